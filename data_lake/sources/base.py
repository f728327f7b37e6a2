"""What every market-data source yields: lake-schema frames for one underlying and day.

Sources stream one ``SourceBatch`` per (underlying, trading date), so memory stays
flat however long the date range, and the shared ingest path (quality checks,
quarantine, atomic partition writes) treats every source the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl


@dataclass(frozen=True)
class SourceBatch:
    """Frames for one underlying and trading date, keyed by lake table name."""

    underlying: str
    day: date
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    origin: str = ""  # where the rows came from (file, URL, generator): used in error messages
    # the identity of the file or request the rows came from, stored on every row (the
    # ``batch_id`` column) where a frame has none: a re-import of a corrected file
    # replaces that file's rows (upsert). Defaults to ``origin``.
    batch_id: str = ""
