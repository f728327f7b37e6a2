"""LEAN option import benchmark: volflow's Polars readers against a pandas reader.

Run::

    python benchmarks/bench_lean.py [--data ../shared/data/lean] [--repeats 5]

Inputs, from the real LEAN sample (QuantConnect LEAN, Apache 2.0):

* option bar zips: GOOG's minute quote, trade and open-interest zips of 2015-12-23 and
  2015-12-24 (one CSV per contract; ~300k quote rows) and AAPL's 2014 daily zips
  (4,532 tiny CSVs: the per-member overhead case);
* universe chains: AAPL's 13 end-of-day chain files (~58k rows with vendor Greeks).

Timed on the same files in the same run, the work being the same mapping (contract
from the member name, 1/10000-dollar prices to dollars with 0 as missing, local bar
times to UTC bar ends, quote/trade/open-interest joined per contract and snapshot):

* volflow: ``read_bar_zip`` + ``combine_bars``, and ``read_universe``;
* BASELINE, a pandas reader the way a notebook does it: ``pd.read_csv`` per zip
  member (``ZipFile.open``), contract columns from a regex on the name, ``pd.concat``,
  vectorized conversions, ``pd.merge`` for the joins (no row loops).

Ratios are what to read: the machine has 2 shared cores, absolute times are noisy.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import pandas as pd
from bench_ingest import median_seconds  # run as a script: benchmarks/ is on the path

from data_lake.calendar import exchange_calendar
from data_lake.sources.lean_options import (
    KIND_COLUMNS,
    MEMBER,
    BarFile,
    combine_bars,
    read_bar_zip,
    read_universe,
    universe_files,
)

NEW_YORK = "America/New_York"


def bar_inputs(root: Path) -> dict[str, list[BarFile]]:
    goog = root / "option" / "usa" / "minute" / "goog"
    daily = root / "option" / "usa" / "daily"
    return {
        "GOOG minute, 2 sessions": [
            BarFile(goog / f"{day}_{kind}_american.zip", kind, "minute")
            for day in ("20151223", "20151224")
            for kind in KIND_COLUMNS
        ],
        "AAPL daily 2014 (4.5k members)": [
            BarFile(daily / f"aapl_2014_{kind}_american.zip", kind, "daily")
            for kind in KIND_COLUMNS
        ],
    }


def volflow_bars(files: list[BarFile]) -> int:
    calendar = exchange_calendar()
    rows = 0
    for unit in {f.path.name.split("_")[0] for f in files}:  # a session (minute) or a year
        parts: dict[str, list] = {}  # type: ignore[type-arg]
        for bar_file in files:
            if bar_file.path.name.split("_")[0] == unit:
                parts.setdefault(bar_file.kind, []).append(read_bar_zip(bar_file, calendar))
        rows += combine_bars(parts).height
    return rows


def pandas_zip(bar_file: BarFile) -> pd.DataFrame:
    """One zip the pandas way: a read_csv per member, then vectorized conversions."""
    columns = list(KIND_COLUMNS[bar_file.kind])
    frames = []
    with zipfile.ZipFile(bar_file.path) as archive:
        for name in archive.namelist():
            match = MEMBER.match(name)
            assert match is not None
            with archive.open(name) as handle:
                frame = pd.read_csv(handle, header=None, names=columns)
            frame["right"] = "C" if match.group("right") == "call" else "P"
            frame["strike"] = int(match.group("strike")) / 10_000
            frame["expiry"] = match.group("expiry")
            frame["_day"] = match.group("day")
            frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    data["expiry"] = pd.to_datetime(data["expiry"], format="%Y%m%d")
    if bar_file.resolution == "minute":
        start = pd.to_datetime(data["_day"], format="%Y%m%d") + pd.to_timedelta(
            data["time"], unit="ms"
        )
        end = start + pd.Timedelta(minutes=1)
    else:  # daily: the session's close
        start = pd.to_datetime(data["time"], format="%Y%m%d %H:%M")
        end = start.dt.normalize() + pd.Timedelta(hours=16)
    data["ts_event"] = end.dt.tz_localize(NEW_YORK).dt.tz_convert("UTC")
    for column in columns[1:]:
        if "size" in column or column in ("volume", "open_interest"):
            continue
        data[column] = data[column].where(data[column] > 0) / 10_000
    return data.drop(columns=["time", "_day"])


def pandas_bars(files: list[BarFile]) -> int:
    key = ["right", "strike", "expiry", "ts_event"]
    rows = 0
    for unit in {f.path.name.split("_")[0] for f in files}:
        kinds = {f.kind: pandas_zip(f) for f in files if f.path.name.split("_")[0] == unit}
        quotes = kinds["quote"]
        trades = kinds["trade"][[*key, "last", "volume"]]
        combined = quotes.merge(trades, on=key, how="outer")
        interest = kinds["openinterest"]
        interest["date"] = interest["ts_event"].dt.tz_convert(NEW_YORK).dt.date
        daily = interest.groupby(["right", "strike", "expiry", "date"], as_index=False)[
            "open_interest"
        ].last()
        combined["date"] = combined["ts_event"].dt.tz_convert(NEW_YORK).dt.date
        combined = combined.merge(daily, on=["right", "strike", "expiry", "date"], how="left")
        rows += len(combined)
    return rows


def volflow_universes(files: list[tuple], calendar: object) -> int:  # type: ignore[type-arg]
    return sum(read_universe(path, day, calendar).height for day, path in files)  # type: ignore[arg-type]


def pandas_universes(files: list[tuple]) -> int:  # type: ignore[type-arg]
    rows = 0
    for day, path in files:
        frame = pd.read_csv(path)
        frame = frame.rename(columns={"#expiry": "expiry"}).iloc[1:]
        frame["expiry"] = pd.to_datetime(frame["expiry"].astype("Int64").astype(str))
        frame["last"] = frame["close"].where(frame["close"] > 0)
        frame["vendor_iv"] = frame["implied_volatility"].where(frame["implied_volatility"] > 0)
        close = pd.Timestamp(day).tz_localize(NEW_YORK) + pd.Timedelta(hours=16)
        frame["ts_event"] = close.tz_convert("UTC")
        rows += len(frame)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lean"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root: Path = args.data
    if not (root / "option" / "usa").is_dir():
        raise SystemExit(f"no LEAN sample at {root} (pass --data)")
    calendar = exchange_calendar()
    print(f"LEAN option import, median of {args.repeats} runs after a warm-up\n")
    print(f"{'input':34} {'rows':>9} {'volflow rows/s':>15} {'pandas rows/s':>14} {'ratio':>7}")
    for label, files in bar_inputs(root).items():
        rows = volflow_bars(files)
        assert rows == pandas_bars(files), "the two readers disagree on the row count"
        ours = median_seconds(lambda f=files: volflow_bars(f), args.repeats)
        theirs = median_seconds(lambda f=files: pandas_bars(f), args.repeats)
        print(f"{label:34} {rows:9,} {rows / ours:15,.0f} {rows / theirs:14,.0f} "
              f"{theirs / ours:6.1f}x")  # fmt: skip
    universes = universe_files(root, "AAPL", None, None)
    rows = volflow_universes(universes, calendar)
    assert rows == pandas_universes(universes)
    ours = median_seconds(lambda: volflow_universes(universes, calendar), args.repeats)
    theirs = median_seconds(lambda: pandas_universes(universes), args.repeats)
    label = f"AAPL universe chains ({len(universes)} files)"
    print(f"{label:34} {rows:9,} {rows / ours:15,.0f} {rows / theirs:14,.0f} "
          f"{theirs / ours:6.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
