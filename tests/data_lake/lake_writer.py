"""A real ingest process for the crash tests: a fixed sequence of lake commits.

``python -m tests.data_lake.lake_writer LAKE WORK [--states]`` prepares every batch
(saved to ``WORK/plan.pickle``, which later runs load instead: they start in a fraction
of the time), prints ``ready``, then makes its commits, printing one JSON line of counts
after each (with ``--states``, the lake's content digests too, see :func:`lake_content`):

1-4. synthetic SPY sessions 2024-01-02..2024-01-19 in chunks of 4 (quotes and bars
     of each session in one commit), merge mode;
5.   a correction of 2024-01-08..2024-01-12 with dirty quotes (rows quarantined);
6.   a CBOE file imported whole (upsert), then 7. its corrected re-publication, which
     changes a price, makes a row invalid and no longer covers AAPL on 2024-01-03.

The sequence is deterministic, so the lake after k commits is the same on every run:
the test kills this process at random moments and compares.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from datetime import date
from pathlib import Path
from typing import Any

from data_lake.commit import recover
from data_lake.ingest import chunked, write_batches
from data_lake.lake import Lake
from data_lake.schemas import TABLES

CBOE_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cboe" / "eod_calcs_2days.csv"
FILE_NAME = "UnderlyingOptionsEODCalcs_2024-01.csv"


def corrected(text: str) -> str:
    """The fixture as a vendor re-publishes it: one price changed, one row made invalid
    (bid above ask), and AAPL's rows of 2024-01-03 dropped."""
    lines = text.splitlines()
    out = [lines[0]]
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("AAPL,2024-01-03"):
            continue
        if number == 2:
            out.append(line.replace(",61.50,12,62.50,", ",61.00,12,62.00,", 1))
        elif number == 3:
            out.append(line.replace(",19.50,12,20.50,", ",29.50,12,20.50,", 1))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def lake_content(lake: Lake) -> dict[str, str]:
    """Each table's rows (order-free) and the import records, as digests, read the way
    readers read (a dead writer's commit finished first): equal lakes give equal dicts
    whatever their files."""
    from data_lake.catalog import query

    recover(lake)
    content = {}
    for name in TABLES:
        frame = query(lake, f"SELECT * FROM {name}")
        rows = sorted(map(repr, frame.rows()))
        content[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
        content[f"{name}.rows"] = str(len(rows))
    records = sorted((lake.root / "_batches").glob("*.json"))
    content["_batches"] = hashlib.sha256(
        "|".join(p.read_text() for p in records).encode()
    ).hexdigest()[:16]
    return content


def run(lake: Lake, commits: list[tuple[list[Any], str, bool]], states: bool) -> None:
    """Make the commits, printing each one's counts (and the lake's state)."""
    for batches, mode, whole in commits:
        writes = write_batches(lake, batches, mode, whole_files=whole)  # type: ignore[arg-type]
        counts: dict[str, object] = {
            "rows_in": sum(w.rows_in for w in writes),
            "written": sum(w.rows_written for w in writes),
            "quarantined": sum(w.quarantined for w in writes),
        }
        if states:
            counts["state"] = lake_content(lake)
        print(json.dumps(counts), flush=True)


def plan(work: Path) -> list[tuple[list[Any], str, bool]]:
    """Every commit's (batches, mode, whole_files), prepared before anything is written
    (loaded from ``work`` if an earlier run prepared them)."""
    saved = work / "plan.pickle"
    if saved.exists():
        return pickle.loads(saved.read_bytes())  # type: ignore[no-any-return]
    from data_lake.sources import cboe, synthetic
    from data_lake.sources.synthetic import SyntheticConfig

    config = SyntheticConfig(strikes_per_sd=4.0)
    sessions = list(synthetic.generate("SPY", date(2024, 1, 2), date(2024, 1, 19), config))
    commits: list[tuple[list[Any], str, bool]] = [
        (list(chunk), "merge", False) for chunk in chunked(sessions, 4)
    ]
    dirty = SyntheticConfig(strikes_per_sd=4.0, dirt_rate=0.05)
    fix = list(synthetic.generate("SPY", date(2024, 1, 8), date(2024, 1, 12), dirty))
    commits.append((list(fix), "merge", False))
    first, second = work / "v1" / FILE_NAME, work / "v2" / FILE_NAME
    for path, text in ((first, CBOE_FIXTURE.read_text()),
                       (second, corrected(CBOE_FIXTURE.read_text()))):  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        commits.append((list(cboe.load_file(path)), "upsert", True))
    saved.write_bytes(pickle.dumps(commits))
    return commits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lake", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--states", action="store_true")
    args = parser.parse_args()
    lake = Lake(args.lake)
    commits = plan(args.work)
    if args.states:
        print(json.dumps({"state": lake_content(lake)}), flush=True)
    print("ready", flush=True)
    run(lake, commits, args.states)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
