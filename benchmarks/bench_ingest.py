"""Ingest and point-query benchmark: volflow's lake against a row-by-row SQLite store.

Run::

    python benchmarks/bench_ingest.py [--years N] [--underlyings SPY,QQQ] [--quick]

Every figure is compared with a baseline measured in the same run, on the same
machine and the same data; read the ratios, not the absolute times (the
reference machine has 2 shared cores, so absolute times are noisy).

**1. Generation + lake write throughput (option rows/s).** The seeded synthetic
source (``data_lake.sources.synthetic.generate``) streams one batch per
(underlying, session) over ``--years`` years of daily sessions ending
2024-12-31 (``--quick``: two months). The loop times separately

* (a) generation alone (``next()`` on the generator; the first call also pays for
  the path simulation from the anchor session, 2000-01-03, as a real run does);
* (b) volflow's write path as the ingest task runs it, ``write_batches(lake, chunk)``
  on chunks of ``WRITE_CHUNK_DAYS`` sessions, into a temporary lake:
  conform, quality checks, quarantine, one atomic zstd Parquet file per
  partition (``option_quotes`` and ``underlying_bars``), merge mode;
* (c) BASELINE, the store of the seed tutorial articles: a SQLite file database
  with a table ``option_quotes`` (the lake schema's columns, ``PRIMARY KEY
  (contract_id, ts_event)``), one ``cursor.execute("INSERT OR REPLACE ...", row)``
  per row of a pandas frame's ``iterrows()`` and one commit per (underlying,
  session); (c') the same store fed from Polars ``iter_rows()``, a faster
  variant shown so the ratio is not flattered by pandas' slow row iteration;
  dates and UTC timestamps are stored as ISO text (``YYYY-MM-DD HH:MM:SS``).
  To bound the run time it stores only the first ``--baseline-sessions``
  sessions of each underlying (option quotes only: no bars, no checks) and its
  rows/s comes from that subset.

End-to-end rows/s adds the generation time per row (from (a), the same for both)
to each store's write time per row.

**2. Point query: one underlying, one day, over a growing history.** Lakes for
the same underlyings with 1 and 4 years of daily partitions (``--quick``: 63 and
252 sessions) are built by re-dating the last generated session of each
underlying: for every earlier session its ``option_quotes`` and
``underlying_bars`` frames are written, with ``ts_event``/``ts_init`` shifted to
that session, to the session's own ``underlying=/date=`` folder, as zstd Parquet
with statistics (what ``atomic_write_parquet`` writes; the other columns,
contract ids included, are the template's). Query cost depends on the number and
layout of files, not on their content. The query

    SELECT * FROM option_quotes WHERE underlying='SPY' AND date='<last session>'

is timed (median of ``--repeats`` runs after one warm-up) through
``data_lake.catalog.query(lake, sql)`` (a new DuckDB connection and views per
call, as the CLI does) and through one persistent ``connect(lake)`` connection.
BASELINE: a SQLite store holding the same rows (filled with ``INSERT ... SELECT``
from the template rows; how it is filled does not matter for reading), queried as
the seed articles do, with no index beyond the primary key::

    pd.read_sql_query("SELECT * FROM option_quotes WHERE underlying=? AND date(ts_event)=?",
                      con, params=(underlying, day))

on a new connection per query. The target: volflow's point-query time must not
grow with the history.

**3.** Peak RSS of the process (``resource.getrusage``) at the end.

The synthetic market is seeded (``--seed``, default 7); nothing else is random.
Temporary lakes and databases live under ``/tmp`` and are removed at the end.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl

from data_lake.calendar import exchange_calendar
from data_lake.catalog import connect, query
from data_lake.ingest import write_batches
from data_lake.lake import Lake, read_partition
from data_lake.quality import conform
from data_lake.schemas import OPTION_QUOTES, PARTITION_COLUMNS, UNDERLYING_BARS, TableSpec
from data_lake.sources.base import SourceBatch
from data_lake.sources.synthetic import SyntheticConfig, generate
from tasks.ingest import WRITE_CHUNK_DAYS

END = date(2024, 12, 31)
QUICK_SESSIONS = 42  # about two months of sessions
QUICK_HISTORIES = (63, 252)
FULL_HISTORIES = (252, 1008)  # 1 and 4 years of sessions
TS_FORMAT = "%Y-%m-%d %H:%M:%S"  # how the SQLite baseline stores UTC timestamps
TS_COLUMNS = ("ts_event", "ts_init")
_SQLITE_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "TEXT",
    pl.Date: "TEXT",
    pl.Datetime: "TEXT",
    pl.Float64: "REAL",
    pl.Int64: "INTEGER",
    pl.Int32: "INTEGER",
}


# --------------------------------------------------------------------------- helpers


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs, after one untimed warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed(batches: Iterator[SourceBatch]) -> Iterator[tuple[SourceBatch, float]]:
    """Each batch with the seconds the generator took to produce it."""
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        elapsed = time.perf_counter() - start
        if batch is None:
            return
        yield batch, elapsed


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain fixed-width table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


# --------------------------------------------------------------------------- SQLite baseline


def _sqlite_ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TS_FORMAT)


def register_sqlite_adapters() -> None:
    """Store dates and UTC timestamps as ISO text, as the seed articles' stores do."""
    sqlite3.register_adapter(datetime, _sqlite_ts)
    sqlite3.register_adapter(date, date.isoformat)


def sqlite_columns() -> list[str]:
    """The source's columns (``batch_id`` is added by volflow's write path)."""
    return [name for name in OPTION_QUOTES.schema.names() if name != "batch_id"]


def create_sqlite_store(path: Path) -> sqlite3.Connection:
    """The baseline store: one table, the lake's columns, PRIMARY KEY (contract_id, ts_event)."""
    con = sqlite3.connect(path)
    columns = ", ".join(
        f"{name} {_SQLITE_TYPES[type(dtype)]}"
        for name, dtype in OPTION_QUOTES.schema.items()
        if name in sqlite_columns()
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS option_quotes ({columns}, PRIMARY KEY (contract_id, ts_event))"
    )
    con.commit()
    return con


def insert_sql(table: str = "option_quotes") -> str:
    names = sqlite_columns()
    return (
        f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )


def sqlite_row_by_row(path: Path, frames: Sequence[pl.DataFrame]) -> tuple[int, float]:
    """Insert every row with its own execute(), one commit per frame: (rows, seconds)."""
    con = create_sqlite_store(path)
    sql = insert_sql()
    rows = 0
    try:
        start = time.perf_counter()
        cursor = con.cursor()
        for frame in frames:
            for row in frame.select(sqlite_columns()).iter_rows():
                cursor.execute(sql, row)
                rows += 1
            con.commit()
        elapsed = time.perf_counter() - start
    finally:
        con.close()
    return rows, elapsed


def sqlite_pandas_iterrows(path: Path, frames: Sequence[pl.DataFrame]) -> tuple[int, float]:
    """The seed articles' form of the same store: a pandas frame per snapshot, one
    execute() per ``DataFrame.iterrows()`` row, one commit per frame: (rows, seconds).

    The conversion to pandas is not timed (in the articles the data arrives as pandas).
    """
    sqlite3.register_adapter(pd.Timestamp, lambda ts: _sqlite_ts(ts.to_pydatetime()))
    pandas_frames = [frame.select(sqlite_columns()).to_pandas() for frame in frames]
    con = create_sqlite_store(path)
    sql = insert_sql()
    rows = 0
    try:
        start = time.perf_counter()
        cursor = con.cursor()
        for frame in pandas_frames:
            for _, row in frame.iterrows():
                cursor.execute(sql, tuple(row))
                rows += 1
            con.commit()
        elapsed = time.perf_counter() - start
    finally:
        con.close()
    return rows, elapsed


# --------------------------------------------------------------------------- part 1


@dataclass
class WriteResult:
    underlyings: list[str]
    first_day: date
    last_day: date
    sessions: int = 0
    option_rows: int = 0
    quarantined: int = 0
    gen_seconds: float = 0.0
    write_seconds: float = 0.0
    baseline_rows: int = 0
    baseline_sessions: int = 0
    baseline_seconds: float = 0.0
    pandas_rows: int = 0
    pandas_seconds: float = 0.0
    templates: dict[str, SourceBatch] = field(default_factory=dict)  # last batch per underlying


def bench_write(
    underlyings: Sequence[str],
    start: date,
    end: date,
    config: SyntheticConfig,
    *,
    baseline_sessions: int,
    workdir: Path,
) -> WriteResult:
    lake = Lake(workdir / "write-lake")
    lake.ensure_writable()
    result = WriteResult(list(underlyings), start, end)
    baseline_frames: list[pl.DataFrame] = []
    for underlying in underlyings:
        kept = 0
        last: SourceBatch | None = None
        chunk: list[SourceBatch] = []

        def flush(chunk: list[SourceBatch]) -> None:
            t0 = time.perf_counter()
            writes = write_batches(lake, chunk)
            result.write_seconds += time.perf_counter() - t0
            result.quarantined += sum(w.quarantined for w in writes)

        for batch, gen_seconds in timed(generate(underlying, start, end, config)):
            result.gen_seconds += gen_seconds
            result.sessions += 1
            result.option_rows += batch.frames[OPTION_QUOTES.name].height
            if kept < baseline_sessions:
                baseline_frames.append(batch.frames[OPTION_QUOTES.name])
                kept += 1
            last = batch
            chunk.append(batch)
            if len(chunk) == WRITE_CHUNK_DAYS:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
        if last is None:
            raise SystemExit(f"no sessions between {start} and {end}")
        result.templates[underlying] = last
        result.baseline_sessions += kept
    rows, seconds = sqlite_row_by_row(workdir / "write-baseline.sqlite", baseline_frames)
    result.baseline_rows, result.baseline_seconds = rows, seconds
    rows, seconds = sqlite_pandas_iterrows(
        workdir / "write-baseline-pandas.sqlite", baseline_frames
    )
    result.pandas_rows, result.pandas_seconds = rows, seconds
    return result


def report_write(r: WriteResult) -> None:
    gen_rate = r.option_rows / r.gen_seconds
    lake_rate = r.option_rows / r.write_seconds
    base_rate = r.baseline_rows / r.baseline_seconds
    pandas_rate = r.pandas_rows / r.pandas_seconds
    lake_e2e = r.option_rows / (r.gen_seconds + r.write_seconds)
    base_e2e = 1 / (1 / gen_rate + 1 / base_rate)
    print(
        f"\n1. Generation + write: {', '.join(r.underlyings)}, sessions {r.first_day}..{r.last_day}"
        f" ({r.sessions} underlying-sessions, {r.option_rows:,} option rows,"
        f" {r.quarantined} quarantined)"
    )
    print_table(
        "option rows/s (higher is better)",
        ("measure", "volflow", "baseline", "volflow/baseline"),
        [
            ("(a) generation alone", fmt_rate(gen_rate), "-", "-"),
            (
                "(b) vs (c) store write, pandas iterrows",
                fmt_rate(lake_rate),
                fmt_rate(pandas_rate),
                fmt_ratio(lake_rate / pandas_rate) + "  (target >= 20x)",
            ),
            (
                "(b) vs (c') store write, polars iter_rows",
                fmt_rate(lake_rate),
                fmt_rate(base_rate),
                fmt_ratio(lake_rate / base_rate),
            ),
            (
                "end-to-end generation + write",
                fmt_rate(lake_e2e),
                fmt_rate(base_e2e),
                fmt_ratio(lake_e2e / base_e2e) + "  (vs c')",
            ),
        ],
    )
    print(
        f"volflow: write_batches per {WRITE_CHUNK_DAYS} sessions,"
        f" {1000 * r.write_seconds / r.sessions:.1f} ms per"
        " underlying-session (option_quotes + underlying_bars partitions)."
    )
    print(
        "baseline (c): SQLite INSERT OR REPLACE per pandas iterrows() row, commit per session,"
        " as in the seed articles; (c') the same store fed from polars iter_rows()"
        " (a faster baseline)."
    )
    print(
        "both baselines measured on the first"
        f" {r.baseline_sessions // len(r.underlyings)} sessions of each underlying"
        f" ({r.baseline_rows:,} rows, {r.baseline_seconds:.1f} s), option quotes only."
    )
    print("end-to-end baseline = generation time per row (a) + baseline write time per row.")


# --------------------------------------------------------------------------- part 2


def shifted(frame: pl.DataFrame, days: int) -> pl.DataFrame:
    """``frame`` with its timestamps moved by ``days`` days (re-dated to another session)."""
    delta = timedelta(days=days)
    return frame.with_columns(pl.col(c) + delta for c in TS_COLUMNS)


def sort_like_lake(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    return frame.sort(list(keys), nulls_last=True, maintain_order=True)


def stored(batch: SourceBatch, spec: TableSpec) -> pl.DataFrame:
    """A batch's frame of ``spec`` as the write path stores it (all file columns)."""
    frame = batch.frames[spec.name].with_columns(batch_id=pl.lit(batch.origin))
    return conform(frame, spec, batch.origin).drop(PARTITION_COLUMNS)


def extend_lake(lake: Lake, templates: dict[str, SourceBatch], days: Sequence[date]) -> None:
    """Write re-dated copies of each template's partitions for ``days``."""
    for underlying, batch in templates.items():
        files = {
            OPTION_QUOTES.name: sort_like_lake(
                stored(batch, OPTION_QUOTES), ("ts_event", "contract_id")
            ),
            UNDERLYING_BARS.name: stored(batch, UNDERLYING_BARS),
        }
        for day in days:
            offset = (day - batch.day).days
            for table, frame in files.items():
                target = lake.data_file(table, underlying, day)
                target.parent.mkdir(parents=True, exist_ok=True)
                shifted(frame, offset).write_parquet(target, compression="zstd", statistics=True)


def extend_sqlite(path: Path, templates: dict[str, SourceBatch], days: Sequence[date]) -> None:
    """Add re-dated copies of each template's option quotes for ``days`` to the store."""
    con = create_sqlite_store(path)
    try:
        con.execute("PRAGMA cache_size = -262144")  # faster build; queries use new connections
        con.execute("CREATE TEMP TABLE template AS SELECT * FROM option_quotes WHERE false")
        con.executemany(
            insert_sql("temp.template"),
            (
                row
                for batch in templates.values()
                for row in batch.frames[OPTION_QUOTES.name].select(sqlite_columns()).iter_rows()
            ),
        )
        names = sqlite_columns()
        redated = {
            "date": ":day",
            **{c: f"strftime('{TS_FORMAT}', {c}, :shift)" for c in TS_COLUMNS},
        }
        select = ", ".join(redated.get(c, c) for c in names)
        template_day = {b.day for b in templates.values()}
        if len(template_day) != 1:
            raise SystemExit("templates must share their session")
        (anchor,) = template_day
        for day in days:
            con.execute(
                f"INSERT OR REPLACE INTO option_quotes ({', '.join(names)}) "
                f"SELECT {select} FROM temp.template",
                {"day": day.isoformat(), "shift": f"{(day - anchor).days:+d} days"},
            )
        con.commit()
    finally:
        con.close()


def duckdb_query(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """``sql`` on an open catalog connection, to Polars (what ``catalog.query`` returns)."""
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def sqlite_point_query(db: Path, underlying: str, day: date) -> pd.DataFrame:
    """The seed articles' reader: a new connection, a filter on date(ts_event), pandas."""
    with closing(sqlite3.connect(db)) as con:
        return pd.read_sql_query(
            "SELECT * FROM option_quotes WHERE underlying=? AND date(ts_event)=?",
            con,
            params=(underlying, day.isoformat()),
        )


@dataclass
class QueryResult:
    label: str
    sessions: int
    files: int
    rows: int
    query_s: float
    persistent_s: float
    macro_s: float
    read_partition_s: float
    baseline_s: float


def bench_point_query(
    templates: dict[str, SourceBatch],
    histories: Sequence[int],
    repeats: int,
    workdir: Path,
) -> list[QueryResult]:
    underlying = next(iter(templates))
    day = templates[underlying].day
    calendar = exchange_calendar()
    all_days = [s.day for s in calendar.sessions(date(day.year - 10, 1, 1), day)]
    lake = Lake(workdir / "query-lake")
    db = workdir / "query-baseline.sqlite"
    sql = f"SELECT * FROM option_quotes WHERE underlying='{underlying}' AND date='{day}'"
    macro_sql = f"SELECT * FROM option_quotes_at('{underlying}', DATE '{day}')"
    results: list[QueryResult] = []
    built = 0
    for n in sorted(histories):
        new_days = all_days[len(all_days) - n : len(all_days) - built]
        t0 = time.perf_counter()
        extend_lake(lake, templates, new_days)
        t1 = time.perf_counter()
        extend_sqlite(db, templates, new_days)
        t2 = time.perf_counter()
        built = n
        print(
            f"(setup, not timed as a result) history of {n} sessions: +{len(new_days)} sessions"
            f" written to the lake in {t1 - t0:.1f} s and to SQLite in {t2 - t1:.1f} s",
            flush=True,
        )
        files = sum(1 for _ in lake.root.rglob("*.parquet"))

        volflow_rows = query(lake, sql).height
        baseline = partial(sqlite_point_query, db, underlying, day)
        baseline_rows = len(baseline())
        with closing(connect(lake)) as con:
            persistent = partial(duckdb_query, con, sql)
            persistent_rows = persistent().height
            query_s = median_seconds(partial(query, lake, sql), repeats)
            persistent_s = median_seconds(persistent, repeats)
        macro = partial(query, lake, macro_sql)
        direct = partial(read_partition, lake, OPTION_QUOTES, underlying, day)
        macro_rows, direct_rows = macro().height, direct().height
        macro_s = median_seconds(macro, repeats)
        read_partition_s = median_seconds(direct, repeats)
        if not volflow_rows == persistent_rows == baseline_rows == macro_rows == direct_rows > 0:
            raise SystemExit(
                f"row counts differ: query {volflow_rows}, connect {persistent_rows},"
                f" macro {macro_rows}, read_partition {direct_rows}, sqlite {baseline_rows}"
            )
        baseline_s = median_seconds(baseline, repeats)
        years = n / 252
        label = f"{years:g}y ({n} sessions)" if years >= 1 else f"{n} sessions"
        results.append(
            QueryResult(
                label,
                n,
                files,
                volflow_rows,
                query_s,
                persistent_s,
                macro_s,
                read_partition_s,
                baseline_s,
            )
        )
    return results


def report_query(
    results: list[QueryResult], templates: dict[str, SourceBatch], repeats: int
) -> None:
    underlying = next(iter(templates))
    day = templates[underlying].day
    small, large = results[0], results[-1]
    print(
        f"\n2. Point query: underlying={underlying} date={day} ({small.rows:,} rows) over"
        f" {len(templates)} underlyings' history; median of {repeats} after a warm-up"
    )
    growth = f"{large.label.split(' ')[0]}/{small.label.split(' ')[0]}"
    ms = "{:.1f}".format
    print_table(
        "milliseconds per query (lower is better)",
        (
            "reader",
            small.label,
            large.label,
            f"growth {growth}",
            f"baseline/volflow at {large.label.split(' ')[0]}",
        ),
        [
            (
                "volflow catalog.query() (new conn + views)",
                ms(small.query_s * 1e3),
                ms(large.query_s * 1e3),
                fmt_ratio(large.query_s / small.query_s),
                fmt_ratio(large.baseline_s / large.query_s),
            ),
            (
                "volflow connect() once, then con.sql()",
                ms(small.persistent_s * 1e3),
                ms(large.persistent_s * 1e3),
                fmt_ratio(large.persistent_s / small.persistent_s),
                fmt_ratio(large.baseline_s / large.persistent_s),
            ),
            (
                "volflow catalog.query() on option_quotes_at()",
                ms(small.macro_s * 1e3),
                ms(large.macro_s * 1e3),
                fmt_ratio(large.macro_s / small.macro_s),
                fmt_ratio(large.baseline_s / large.macro_s),
            ),
            (
                "volflow lake.read_partition() (Python API)",
                ms(small.read_partition_s * 1e3),
                ms(large.read_partition_s * 1e3),
                fmt_ratio(large.read_partition_s / small.read_partition_s),
                fmt_ratio(large.baseline_s / large.read_partition_s),
            ),
            (
                "baseline SQLite + pd.read_sql_query",
                ms(small.baseline_s * 1e3),
                ms(large.baseline_s * 1e3),
                fmt_ratio(large.baseline_s / small.baseline_s),
                "1.00x",
            ),
        ],
    )
    print(
        f"lake files (all tables): {small.files:,} and {large.files:,}; history built by"
        " re-dating the last generated session into each session's underlying=/date= folder."
    )
    print("target: volflow's growth ratio ~1.00x (point-query time independent of history).")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--years", type=float, default=1.0, help="years of sessions to generate")
    parser.add_argument("--underlyings", default="SPY,QQQ", help="comma-separated tickers")
    parser.add_argument("--quick", action="store_true", help="two months; histories 63/252")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--strikes-per-sd", type=float, default=20.0, help="synthetic chain density"
    )
    parser.add_argument("--skip-query", action="store_true", help="only the write benchmark")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per point query")
    parser.add_argument(
        "--baseline-sessions", type=int, default=20, help="sessions per underlying for SQLite"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    underlyings = [u.strip().upper() for u in args.underlyings.split(",") if u.strip()]
    calendar = exchange_calendar()
    if args.quick:
        start = calendar.sessions(date(END.year, 1, 1), END)[-QUICK_SESSIONS].day
        histories = QUICK_HISTORIES
    else:
        start = END - timedelta(days=round(365.25 * args.years) - 1)
        histories = FULL_HISTORIES
    config = SyntheticConfig(seed=args.seed, strikes_per_sd=args.strikes_per_sd)
    register_sqlite_adapters()
    print(
        f"bench_ingest: python {platform.python_version()}, polars {pl.__version__},"
        f" duckdb {duckdb.__version__}, sqlite {sqlite3.sqlite_version}, pandas {pd.__version__};"
        f" seed {args.seed}; {args.strikes_per_sd:g} strikes per sd"
        f"{'; --quick' if args.quick else ''}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="volflow-bench-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        write = bench_write(
            underlyings,
            start,
            END,
            config,
            baseline_sessions=args.baseline_sessions,
            workdir=workdir,
        )
        report_write(write)
        if not args.skip_query:
            results = bench_point_query(write.templates, histories, args.repeats, workdir)
            report_query(results, write.templates, args.repeats)
    print(
        f"\n3. Peak RSS: {peak_rss_mib():,.0f} MiB; total run time"
        f" {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
