"""Reading a release as extracted: find its parts, read one record, verify, the synthetic sample, the builder."""
