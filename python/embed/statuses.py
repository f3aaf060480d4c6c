"""The row-status vocabulary of ML.GENERATE_EMBEDDING, shared by the SQL, the validator and the embedded engine.

A row's ``ml_generate_embedding_status`` is empty on success. A status that starts with
:data:`RETRYABLE_PREFIX` is worth sending again (BigQuery's wording); any other is kept as it is.
"""

from __future__ import annotations

__all__ = ["OK", "RESOURCE_EXHAUSTED", "RETRYABLE_PREFIX", "is_retryable"]

OK = ""
RETRYABLE_PREFIX = "A retryable error occurred:"
# What a busy Vertex AI endpoint answers (and what the embedded engine's fault knob injects).
RESOURCE_EXHAUSTED = f"{RETRYABLE_PREFIX} RESOURCE_EXHAUSTED error from remote service/endpoint."


def is_retryable(status: str | None) -> bool:
    """True when ``status`` is a failure worth retrying."""
    return bool(status) and status.startswith(RETRYABLE_PREFIX)
