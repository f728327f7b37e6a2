from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """The CLI sets process-wide defaults (PREFECT_HOME, ...); undo them after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def lake_snapshot(root: Path) -> dict[str, bytes]:
    """Every lake file's bytes, to prove a failed command changed nothing."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.parquet"))
        if "_staging" not in p.parts and "_schemas" not in p.parts
    }
