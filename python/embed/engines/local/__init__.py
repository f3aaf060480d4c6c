"""The embedded engine: the kit's SQL on DuckDB, with ML functions evaluated in Python by a local model."""
