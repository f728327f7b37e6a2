"""Which source's rows the feature build reads where several sources share a snapshot.

The lake keeps every source's rows (a CBOE end-of-day file, a LEAN import and a
yfinance poll after the close all stamp the session close): nothing is lost, and
the views show them all. The features, though, need one chain per snapshot, not two
vendors' quotes interleaved: :func:`one_source_per_snapshot` keeps, for each
snapshot, the rows of the most preferred source present.

The default order puts vendor end-of-day files first (exchange-sourced, complete),
then broker feeds, then yfinance (scraped, delayed), then the synthetic market;
sources not listed come after, alphabetically. ``features.source_preference`` in
the settings replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from data_lake.schemas import TableSpec

DEFAULT_SOURCE_PREFERENCE: tuple[str, ...] = (
    "cboe", "lean", "ibkr", "alpaca", "yfinance", "synthetic",
)  # fmt: skip
_RANK = "_source_rank"


def source_rank(preference: Sequence[str]) -> pl.Expr:
    """0 for the first preferred source, 1 for the next, ...; unlisted sources after."""
    listed = {name: i for i, name in enumerate(preference)}
    return (
        pl.col("source")
        .replace_strict(listed, default=len(listed), return_dtype=pl.Int32)
        .alias(_RANK)
    )


def snapshot_times(spec: TableSpec) -> tuple[str, ...]:
    """A table's snapshot key without ``source``: what makes rows one point in time."""
    return tuple(c for c in spec.snapshot_key if c != "source")


def one_source_per_snapshot(
    frame: pl.DataFrame, snapshot: Sequence[str], preference: Sequence[str]
) -> pl.DataFrame:
    """The rows of ``frame`` whose source is the most preferred among those present at
    their snapshot (the values of the ``snapshot`` columns); row order is kept."""
    if frame.is_empty() or frame.get_column("source").n_unique() == 1:
        return frame
    keys = list(snapshot)
    ranked = frame.with_columns(source_rank(preference))
    # ties in rank (two unlisted sources) go to the alphabetically first source
    best = (
        ranked.select([*keys, _RANK, "source"])
        .unique()
        .sort([*keys, _RANK, "source"])
        .unique(subset=keys, keep="first")
        .select([*keys, "source"])
    )
    return ranked.join(best, on=[*keys, "source"], how="semi", maintain_order="left").drop(_RANK)
