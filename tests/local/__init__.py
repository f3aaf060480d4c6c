"""Tests of the embedded engine (DuckDB and a local model), offline."""
