"""Writing the export: Parquet shards, the report, the card and the manifest, swapped into place whole."""
