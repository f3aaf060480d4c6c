"""Engines run the kit's SQL: BigQuery, or the embedded engine offline."""
