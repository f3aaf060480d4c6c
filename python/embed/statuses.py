"""The row-status vocabulary of ML.GENERATE_EMBEDDING, shared by the SQL and the embedded engine.

A row's ``ml_generate_embedding_status`` is empty on success. A status that starts with
:data:`RETRYABLE_PREFIX` is worth sending again (BigQuery's wording); any other is kept as it is.
Whether a row is retryable is decided in SQL (the templates test the prefix), never in Python.
"""

from __future__ import annotations

__all__ = ["RESOURCE_EXHAUSTED", "RETRYABLE_PREFIX"]

RETRYABLE_PREFIX = "A retryable error occurred:"
# What a busy Vertex AI endpoint answers (and what the embedded engine's fault knob injects).
RESOURCE_EXHAUSTED = f"{RETRYABLE_PREFIX} RESOURCE_EXHAUSTED error from remote service/endpoint."
