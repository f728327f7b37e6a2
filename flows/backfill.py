"""The ``backfill`` flow: load a date range, resumable.

Partitions already written are skipped (unless ``overwrite``), so an interrupted
backfill resumes where it stopped. The body is the ingest-chains flow's.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import model_validator

from flows.ingest_chains import IngestParams, run_with_features
from flows.settings import load_settings
from tasks.failures import fails_cleanly


class BackfillParams(IngestParams):
    """A backfill needs a date range; it skips written partitions unless ``overwrite``."""

    overwrite: bool = False

    @model_validator(mode="after")
    def _needs_range(self) -> BackfillParams:
        if self.start is None or self.end is None:
            raise ValueError("a backfill needs start and end dates")
        return self


@flow(name="backfill", validate_parameters=True)
@fails_cleanly
def backfill(params: BackfillParams) -> dict[str, Any]:
    """Load a date range; resumable (written partitions are skipped unless overwrite)."""
    run = params.model_copy(update={"skip_existing": not params.overwrite})
    return run_with_features(run, load_settings())
