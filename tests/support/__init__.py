"""Test machinery, never imported by the package: the Hub-compatible server and its parts,
synthetic-data helpers, and the scripts the tests run in subprocesses."""
