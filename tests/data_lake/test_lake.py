from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_lake.errors import ConfigError, LakeError
from data_lake.lake import (
    Lake,
    iter_partitions,
    read_partition,
    write_partition,
)
from data_lake.schemas import OPTION_QUOTES, QUARANTINE, UNDERLYING_BARS
from tests.conftest import DAY, SNAPSHOT, make_quotes

QuotesFactory = Callable[..., pl.DataFrame]


def _lake_files(lake: Lake) -> dict[str, bytes]:
    return {
        str(p.relative_to(lake.root)): p.read_bytes()
        for p in sorted(lake.root.rglob("*.parquet"))
        if "_staging" not in p.parts and "_schemas" not in p.parts
    }


def test_write_creates_hive_partition_without_partition_columns(
    lake: Lake, quotes: QuotesFactory
) -> None:
    result = write_partition(lake, OPTION_QUOTES, quotes(), "SPY", DAY)
    expected = (
        lake.root / "option_quotes" / "underlying=SPY" / "date=2024-01-02" / "data-v2.parquet"
    )
    assert result.path == expected and expected.exists()
    stored = pl.read_parquet(expected)
    assert "underlying" not in stored.columns and "date" not in stored.columns
    assert result.rows_written == 4 and result.rows_total == 4 and result.quarantined == 0


def test_read_partition_round_trips_the_frame(lake: Lake, quotes: QuotesFactory) -> None:
    frame = quotes()
    write_partition(lake, OPTION_QUOTES, frame, "SPY", DAY)
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY).equals(frame)


def test_writing_the_same_partition_twice_does_not_duplicate_rows(
    lake: Lake, quotes: QuotesFactory
) -> None:
    write_partition(lake, OPTION_QUOTES, quotes(), "SPY", DAY)
    first = _lake_files(lake)
    result = write_partition(lake, OPTION_QUOTES, quotes(), "SPY", DAY)
    assert result.rows_total == 4
    assert _lake_files(lake) == first  # byte-identical


def test_merge_adds_a_new_snapshot_and_keeps_the_earlier_one(lake: Lake) -> None:
    later = SNAPSHOT - timedelta(hours=2)
    write_partition(lake, OPTION_QUOTES, make_quotes(ts=later), "SPY", DAY)
    result = write_partition(lake, OPTION_QUOTES, make_quotes(ts=SNAPSHOT), "SPY", DAY)
    assert result.rows_total == 8
    stored = read_partition(lake, OPTION_QUOTES, "SPY", DAY)
    assert stored["ts_event"].n_unique() == 2


def test_merge_replaces_a_snapshot_written_again(lake: Lake) -> None:
    write_partition(lake, OPTION_QUOTES, make_quotes(n=4), "SPY", DAY)
    write_partition(lake, OPTION_QUOTES, make_quotes(n=2, bid=[1.0, 1.0]), "SPY", DAY)
    stored = read_partition(lake, OPTION_QUOTES, "SPY", DAY)
    assert stored.height == 2 and stored["bid"].to_list() == [1.0, 1.0]


def test_replace_mode_swaps_the_whole_partition(lake: Lake) -> None:
    write_partition(lake, OPTION_QUOTES, make_quotes(ts=SNAPSHOT - timedelta(hours=1)), "SPY", DAY)
    write_partition(lake, OPTION_QUOTES, make_quotes(n=2), "SPY", DAY, mode="replace")
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY).height == 2


def test_bad_rows_go_to_quarantine_and_the_rest_is_written(lake: Lake) -> None:
    frame = make_quotes(bid=[5.0, 9.0, 4.0, 3.0])  # row 1: bid above ask
    result = write_partition(lake, OPTION_QUOTES, frame, "SPY", DAY)
    assert (result.rows_written, result.quarantined) == (3, 1)
    assert result.reasons == {"bid_above_ask": 1}
    qfile = lake.quarantine_file("option_quotes", "SPY", DAY)
    assert pl.read_parquet(qfile)["reason"].to_list() == ["bid_above_ask"]


def test_rewriting_a_fixed_snapshot_clears_its_quarantine(lake: Lake) -> None:
    write_partition(lake, OPTION_QUOTES, make_quotes(bid=[5.0, 9.0, 4.0, 3.0]), "SPY", DAY)
    write_partition(lake, OPTION_QUOTES, make_quotes(), "SPY", DAY)
    assert not lake.quarantine_file("option_quotes", "SPY", DAY).exists()
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY).height == 4


def test_rows_of_another_partition_are_refused_and_nothing_is_written(lake: Lake) -> None:
    with pytest.raises(LakeError, match="belong to another partition"):
        write_partition(lake, OPTION_QUOTES, make_quotes(), "QQQ", DAY)
    assert _lake_files(lake) == {}


def test_failure_while_writing_leaves_earlier_partitions_and_no_partial_file(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_partition(lake, OPTION_QUOTES, make_quotes(), "SPY", DAY)
    before = _lake_files(lake)

    def explode(self: pl.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"PAR1 half a file")  # a partial file in the staging area
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", explode)
    next_day = DAY + timedelta(days=1)
    frame = make_quotes(ts=SNAPSHOT + timedelta(days=1), date=next_day)
    with pytest.raises(LakeError, match="No space left on device"):
        write_partition(lake, OPTION_QUOTES, frame, "SPY", next_day)
    with pytest.raises(LakeError):  # and an overwrite of an existing partition
        write_partition(lake, OPTION_QUOTES, make_quotes(n=2), "SPY", DAY)
    assert _lake_files(lake) == before
    assert list(lake.staging_dir.iterdir()) == []


def test_corrupt_existing_partition_is_a_clear_error_and_stays_untouched(lake: Lake) -> None:
    write_partition(lake, OPTION_QUOTES, make_quotes(), "SPY", DAY)
    target = lake.data_file("option_quotes", "SPY", DAY)
    target.write_bytes(b"not parquet at all")
    with pytest.raises(LakeError, match=r"corrupt or unreadable lake file .*data-v2\.parquet"):
        write_partition(
            lake, OPTION_QUOTES, make_quotes(ts=SNAPSHOT - timedelta(hours=1)), "SPY", DAY
        )
    assert target.read_bytes() == b"not parquet at all"


def test_invalid_symbol_cannot_become_a_folder(lake: Lake) -> None:
    with pytest.raises(ConfigError, match="invalid underlying symbol"):
        lake.partition_dir("option_quotes", "../etc", DAY)


def test_unwritable_lake_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LakeError, match=r"not writable.*VOLFLOW_HOME"):
        Lake(blocker / "lake").ensure_writable()


def test_iter_partitions_lists_each_partition(lake: Lake) -> None:
    write_partition(lake, OPTION_QUOTES, make_quotes(), "SPY", DAY)
    assert [(p.underlying, p.day) for p in iter_partitions(lake, "option_quotes")] == [("SPY", DAY)]
    assert list(iter_partitions(lake, QUARANTINE.name)) == []


snapshot_offsets = st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offsets=snapshot_offsets, repeat=st.integers(min_value=1, max_value=3))
def test_partition_content_depends_only_on_the_last_write_of_each_snapshot(
    tmp_path_factory: pytest.TempPathFactory, offsets: list[int], repeat: int
) -> None:
    """Writing any sequence of snapshots, some several times, equals writing each once."""
    lake = Lake(tmp_path_factory.mktemp("lake"))
    base = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
    for _ in range(repeat):
        for offset in offsets:
            write_partition(
                lake, OPTION_QUOTES, make_quotes(ts=base + timedelta(hours=offset)), "SPY", DAY
            )
    stored = read_partition(lake, OPTION_QUOTES, "SPY", DAY)
    assert stored.height == 4 * len(set(offsets))
    assert stored.select("contract_id", "ts_event").is_unique().all()
    once = Lake(tmp_path_factory.mktemp("once"))
    for offset in sorted(set(offsets)):
        write_partition(
            lake=once,
            spec=OPTION_QUOTES,
            frame=make_quotes(ts=base + timedelta(hours=offset)),
            underlying="SPY",
            day=DAY,
        )
    assert stored.equals(read_partition(once, OPTION_QUOTES, "SPY", DAY))


def test_quarantined_rows_without_a_snapshot_time_survive_later_writes(lake: Lake) -> None:
    orphan = make_quotes(n=1, ts_event=None)  # missing_field: no snapshot time at all
    write_partition(lake, OPTION_QUOTES, pl.concat([make_quotes(), orphan]), "SPY", DAY)
    write_partition(lake, OPTION_QUOTES, make_quotes(ts=SNAPSHOT - timedelta(hours=1)), "SPY", DAY)
    write_partition(lake, OPTION_QUOTES, pl.concat([make_quotes(), orphan]), "SPY", DAY)
    stored = pl.read_parquet(lake.quarantine_file("option_quotes", "SPY", DAY))
    assert stored["reason"].to_list() == ["missing_field"]  # kept, and stored once


def test_bars_of_different_lengths_ending_together_are_distinct_snapshots(lake: Lake) -> None:
    def bar(seconds: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "underlying": ["SPY"],
                "date": [DAY],
                "ts_event": [SNAPSHOT],
                "bar_seconds": [seconds],
                "open": [1.0],
                "high": [2.0],
                "low": [0.5],
                "close": [1.5],
                "volume": [1],
                "ts_init": [SNAPSHOT],
                "source": ["t"],
            }
        )

    write_partition(lake, UNDERLYING_BARS, bar(86400), "SPY", DAY)
    write_partition(lake, UNDERLYING_BARS, bar(3600), "SPY", DAY)
    stored = read_partition(lake, UNDERLYING_BARS, "SPY", DAY)
    assert sorted(stored["bar_seconds"].to_list()) == [3600, 86400]


def test_rewriting_unsorted_input_leaves_identical_bytes(lake: Lake) -> None:
    reversed_rows = make_quotes().reverse()
    write_partition(lake, OPTION_QUOTES, reversed_rows, "SPY", DAY)
    first = _lake_files(lake)
    write_partition(lake, OPTION_QUOTES, reversed_rows, "SPY", DAY)
    assert _lake_files(lake) == first


def test_concurrent_writers_of_one_partition_lose_no_snapshot(lake: Lake) -> None:
    times = [SNAPSHOT - timedelta(hours=h) for h in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(
            pool.map(
                lambda ts: write_partition(lake, OPTION_QUOTES, make_quotes(ts=ts), "SPY", DAY),
                times,
            )
        )
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY)["ts_event"].n_unique() == 6


def test_upsert_keeps_other_contracts_of_the_same_snapshot(lake: Lake) -> None:
    # one snapshot, two files
    first = make_quotes(n=4).head(2).with_columns(batch_id=pl.lit("file-1"))
    second = make_quotes(n=4).tail(2).with_columns(batch_id=pl.lit("file-2"))
    write_partition(lake, OPTION_QUOTES, first, "SPY", DAY, mode="upsert")
    write_partition(lake, OPTION_QUOTES, second, "SPY", DAY, mode="upsert")
    write_partition(lake, OPTION_QUOTES, second, "SPY", DAY, mode="upsert")  # again: no duplicates
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY).equals(pl.concat([first, second]))
    write_partition(lake, OPTION_QUOTES, second, "SPY", DAY)  # merge: the snapshot is replaced
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY).height == 2


def test_another_sources_snapshot_at_the_same_time_is_kept(lake: Lake) -> None:
    """Regression (lake review, item 1): 4 CBOE rows upserted, then a 1-row yfinance
    merge of the same snapshot left 1 row, all yfinance."""
    cboe = make_quotes(n=4, source="cboe")
    write_partition(lake, OPTION_QUOTES, cboe, "SPY", DAY, mode="upsert")
    poll = make_quotes(n=1, source="yfinance", underlying_price=472.9)
    write_partition(lake, OPTION_QUOTES, poll, "SPY", DAY)
    write_partition(lake, OPTION_QUOTES, poll, "SPY", DAY)  # the same poll again
    stored = read_partition(lake, OPTION_QUOTES, "SPY", DAY)
    assert stored.group_by("source").len().sort("source").rows() == [("cboe", 4), ("yfinance", 1)]
    assert stored.filter(pl.col("source") == "cboe").sort("strike").equals(cboe.sort("strike"))
    # a later poll of the same snapshot replaces the earlier poll, not the vendor's rows
    write_partition(lake, OPTION_QUOTES, make_quotes(n=2, source="yfinance"), "SPY", DAY)
    counts = read_partition(lake, OPTION_QUOTES, "SPY", DAY).group_by("source").len()
    assert counts.sort("source").rows() == [("cboe", 4), ("yfinance", 2)]


def test_one_vendors_upsert_replaces_only_its_own_rows(lake: Lake) -> None:
    write_partition(lake, OPTION_QUOTES, make_quotes(n=4, source="cboe"), "SPY", DAY, mode="upsert")
    lean = make_quotes(n=4, source="lean", underlying_price=473.1)
    write_partition(lake, OPTION_QUOTES, lean, "SPY", DAY, mode="upsert")
    stored = read_partition(lake, OPTION_QUOTES, "SPY", DAY)
    assert stored.height == 8  # the same contracts, one row per source: nothing interleaved
    by_source = stored.group_by("source").agg(pl.col("underlying_price").unique())
    assert sorted(by_source.rows()) == [("cboe", [472.65]), ("lean", [473.1])]


def test_another_sources_rejects_at_the_same_time_stay_in_quarantine(lake: Lake) -> None:
    bad_cboe = make_quotes(n=2, source="cboe", bid=[5.0, 9.0])  # row 1: bid above ask
    write_partition(lake, OPTION_QUOTES, bad_cboe, "SPY", DAY)
    write_partition(lake, OPTION_QUOTES, make_quotes(n=2, source="yfinance"), "SPY", DAY)
    quarantined = pl.read_parquet(lake.quarantine_file("option_quotes", "SPY", DAY))
    assert quarantined.select("source", "reason").rows() == [("cboe", "bid_above_ask")]


def test_removing_one_sources_rows_keeps_the_others_and_their_rejects(lake: Lake) -> None:
    from data_lake.lake import remove_source_rows

    write_partition(lake, OPTION_QUOTES, make_quotes(n=2, source="cboe", bid=[5.0, 9.0]),
                    "SPY", DAY)  # fmt: skip
    write_partition(lake, OPTION_QUOTES, make_quotes(n=3, source="lean", bid=[5.0, 9.0, 4.0]),
                    "SPY", DAY)  # fmt: skip
    assert remove_source_rows(lake, OPTION_QUOTES, "SPY", DAY, "lean") == 2
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY)["source"].to_list() == ["cboe"]
    rejects = pl.read_parquet(lake.quarantine_file("option_quotes", "SPY", DAY))
    assert rejects["source"].to_list() == ["cboe"]
    assert remove_source_rows(lake, OPTION_QUOTES, "SPY", DAY, "cboe") == 1
    assert not lake.partition_dir("option_quotes", "SPY", DAY).exists()
    assert not lake.partition_dir("quarantine", "SPY", DAY).exists()


def test_a_writer_waiting_past_the_lock_timeout_gets_a_clear_error(lake: Lake) -> None:
    import fcntl

    write_partition(lake, OPTION_QUOTES, make_quotes(), "SPY", DAY)
    lock = lake.root / "_locks" / f"option_quotes.SPY.{DAY.isoformat()}.lock"
    with lock.open("a+b") as held:  # another writer holds the partition
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        impatient = Lake(lake.root, lock_timeout_seconds=0.3)
        with pytest.raises(LakeError, match=r"is locked by another writer for over 0\.3s"):
            write_partition(impatient, OPTION_QUOTES, make_quotes(n=2), "SPY", DAY)
    assert read_partition(lake, OPTION_QUOTES, "SPY", DAY).height == 4  # untouched
    write_partition(impatient, OPTION_QUOTES, make_quotes(n=2), "SPY", DAY)  # released


def test_an_unusable_lock_folder_is_a_clear_error(lake: Lake) -> None:
    lake.root.mkdir(parents=True)
    (lake.root / "_locks").write_text("not a folder")
    with pytest.raises(LakeError, match=r"cannot create the lock file .* set VOLFLOW_HOME"):
        write_partition(lake, OPTION_QUOTES, make_quotes(), "SPY", DAY)


def test_new_partition_folders_are_made_with_their_parents(lake: Lake) -> None:
    from data_lake.commit import make_folders

    deep = lake.root / "t" / "underlying=SPY" / "date=2024-01-02"
    assert make_folders(deep) == [deep, deep.parent, deep.parent.parent, lake.root]
    assert deep.is_dir() and make_folders(deep) == []


def test_the_quarantine_holds_every_rejected_row_the_write_counted(lake: Lake) -> None:
    """Regression (lake review, item 8): identical rejected rows were stored once, so
    run summaries reported more quarantined rows than the lake held."""
    copies = pl.concat([make_quotes(n=1)] * 3)  # one row and two identical copies
    for mode in ("merge", "upsert", "upsert"):  # a re-import does not add copies
        result = write_partition(lake, OPTION_QUOTES, copies, "SPY", DAY, mode=mode)  # type: ignore[arg-type]
        assert (result.rows_written, result.quarantined) == (1, 2)
        stored = pl.read_parquet(lake.quarantine_file("option_quotes", "SPY", DAY))
        assert stored["reason"].to_list() == ["duplicate_row", "duplicate_row"]
