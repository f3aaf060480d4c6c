"""Helpers the test modules import: plans, states, README tables, outputs documents, tool venvs.

Fixtures live in each folder's ``conftest.py`` and are built from these; nothing here is a fixture.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
