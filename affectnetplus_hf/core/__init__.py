"""Facts every stage reads: the schema, configs, columns, landmarks, demographics, the repo-id rule and the
files of an export folder. Imports nothing above it; every other stage may import it.
"""
