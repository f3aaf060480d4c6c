"""A testing knob: inject retryable failures into local embedding calls.

``EMBED_LOCAL_FAULTS=retryable:0.3,seed:7`` makes about 30 % of rows come back with
``A retryable error occurred: RESOURCE_EXHAUSTED error from remote service/endpoint.``, as a
busy Vertex AI endpoint would, so the pipeline's retry logic runs for real on the embedded engine.
It exists for tests and demos only; leave it unset for real runs.

Each decision is a pure function of (seed, uri, attempt). The attempt belongs to the object: the
embedded engine keeps, in its database, how many times each object version was sent to the model
(:meth:`embed.engines.local.catalog.Catalog.next_attempts`). A retry therefore gets fresh odds, a
row still fails after k attempts with probability fraction**k, and repeated runs with one seed
converge, whatever process runs them and whatever order the rows arrive in.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from embed.errors import EmbedError

__all__ = ["FAULTS_ENV", "FaultInjector", "faults_from_environment", "parse_faults"]

FAULTS_ENV = "EMBED_LOCAL_FAULTS"
_FORMAT = f"{FAULTS_ENV} takes 'retryable:FRACTION[,seed:INTEGER]', e.g. 'retryable:0.3,seed:7'"


@dataclass(frozen=True)
class FaultInjector:
    """Decides which attempts fail with a retryable status; ``fraction`` 0 never fails."""

    fraction: float = 0.0
    seed: int = 0

    @property
    def enabled(self) -> bool:
        """True when some attempts fail."""
        return self.fraction > 0.0

    def fails(self, uri: str, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (0 for the first) at ``uri`` fails."""
        if self.fraction <= 0.0:
            return False
        digest = hashlib.blake2b(f"{self.seed}\0{attempt}\0{uri}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.fraction


def parse_faults(spec: str | None) -> FaultInjector:
    """The injector a knob value asks for (None or empty: no faults); a malformed value is an EmbedError."""
    if not spec or not spec.strip():
        return FaultInjector()
    values: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.strip().partition(":")
        if not sep or key not in ("retryable", "seed") or key in values:
            raise EmbedError(f"{FAULTS_ENV}={spec!r} is not understood: {_FORMAT}.")
        values[key] = value.strip()
    if "retryable" not in values:
        raise EmbedError(f"{FAULTS_ENV}={spec!r} names no fraction: {_FORMAT}.")
    try:
        fraction = float(values["retryable"])
        seed = int(values.get("seed", "0"))
    except ValueError:
        raise EmbedError(f"{FAULTS_ENV}={spec!r} has a value that is not a number: {_FORMAT}.") from None
    if not 0.0 <= fraction < 1.0:
        raise EmbedError(
            f"{FAULTS_ENV}={spec!r}: the retryable fraction must be at least 0 and below 1,"
            " or no retry could ever succeed."
        )
    return FaultInjector(fraction, seed)


def faults_from_environment() -> FaultInjector:
    """The injector for the current value of EMBED_LOCAL_FAULTS."""
    return parse_faults(os.environ.get(FAULTS_ENV))
