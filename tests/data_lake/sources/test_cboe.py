"""CBOE DataShop Option EOD Summary importer, on constructed fixtures (see fixtures README)."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_lake.errors import SourceError
from data_lake.ingest import write_batches
from data_lake.lake import Lake, read_partition
from data_lake.quality import check
from data_lake.schemas import OPTION_QUOTES
from data_lake.sources.cboe import load_file, parse_eod_summary

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cboe"
CALCS = FIXTURES / "eod_calcs_2days.csv"
PLAIN = FIXTURES / "eod_plain.csv"


def _quotes(path: Path) -> pl.DataFrame:
    return pl.concat(b.frames[OPTION_QUOTES.name] for b in load_file(path))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_each_row_becomes_a_1545_and_a_close_snapshot() -> None:
    batches = load_file(CALCS)
    assert [(b.underlying, b.day) for b in batches] == [
        ("SPX", date(2024, 1, 2)), ("AAPL", date(2024, 1, 2)),
        ("SPX", date(2024, 1, 3)), ("AAPL", date(2024, 1, 3)),
    ]  # fmt: skip
    quotes = batches[1].frames[OPTION_QUOTES.name]  # AAPL
    assert sorted(quotes["ts_event"].unique().to_list()) == [
        datetime(2024, 1, 2, 20, 45, tzinfo=UTC),  # 15:45 New York
        datetime(2024, 1, 2, 21, 0, tzinfo=UTC),  # the close
    ]
    assert check(quotes, OPTION_QUOTES).quarantined.is_empty()
    index = batches[0].frames[OPTION_QUOTES.name]  # SPX and SPXW trade until 16:15
    assert sorted(index["ts_event"].unique().to_list()) == [
        datetime(2024, 1, 2, 20, 45, tzinfo=UTC),
        datetime(2024, 1, 2, 21, 15, tzinfo=UTC),
    ]
    assert check(index, OPTION_QUOTES).quarantined.is_empty()


def test_columns_map_to_the_lake_schema() -> None:
    quotes = _quotes(CALCS)
    row = quotes.filter(
        (pl.col("contract_id") == "SPXW240105C04700000") & (pl.col("date") == date(2024, 1, 2))
    ).sort("ts_event")
    at_1545, at_close = row.row(0, named=True), row.row(1, named=True)
    assert (at_1545["bid"], at_1545["ask"], at_1545["underlying_price"]) == (61.5, 62.5, 4742.0)
    assert (at_close["bid"], at_close["ask"], at_close["underlying_price"]) == (61.4, 62.6, 4742.0)
    assert at_1545["volume"] is None and at_close["volume"] == 150 and at_close["last"] == 62.0
    assert (at_close["exercise_style"], at_close["settlement"]) == ("european", "PM")
    spx = quotes.filter(pl.col("contract_id").str.starts_with("SPX2"))
    assert set(spx["settlement"]) == {"AM"}  # standard SPX monthlies are AM-settled
    aapl = quotes.filter(pl.col("underlying") == "AAPL")
    assert set(aapl["exercise_style"]) == {"american"}
    untraded = aapl.filter(pl.col("strike") == 190.0, pl.col("volume") == 0)
    assert untraded["last"].null_count() == untraded.height  # no trade, no last price


def test_file_without_calcs_columns_reads_the_same_way() -> None:
    quotes = _quotes(PLAIN)
    assert quotes.height == 8 and quotes["underlying_price"].unique().to_list() == [182.0]


def test_zipped_file_with_several_members_reads_every_member(tmp_path: Path) -> None:
    archive = tmp_path / "UnderlyingOptionsEODCalcs_2024-01.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(CALCS, CALCS.name)
        z.write(PLAIN, PLAIN.name)
    quotes = _quotes(archive)
    assert quotes.sort("contract_id", "ts_event").equals(
        pl.concat([_quotes(CALCS), _quotes(PLAIN)]).sort("contract_id", "ts_event")
    )


def test_early_close_keeps_its_1545_snapshot_at_1245(tmp_path: Path) -> None:
    """Regression (lake review, item 7): on a half day CBOE takes the "1545" columns at
    12:45 New York; the importer dropped them as after the close, uncounted."""
    text = PLAIN.read_text().replace("2024-01-04", "2024-11-29")  # 13:00 close
    quotes = _quotes(_write(tmp_path, "early.csv", text))
    assert sorted(quotes["ts_event"].unique().to_list()) == [
        datetime(2024, 11, 29, 17, 45, tzinfo=UTC),  # 12:45 New York
        datetime(2024, 11, 29, 18, 0, tzinfo=UTC),  # the close
    ]
    full_day = _quotes(_write(tmp_path, "full.csv", PLAIN.read_text()))
    assert quotes.height == full_day.height  # every row's two snapshots, as on a full day


def test_duplicate_rows_are_quarantined_on_write(tmp_path: Path) -> None:
    lines = PLAIN.read_text().splitlines()
    path = _write(tmp_path, "dup.csv", "\n".join([*lines, lines[1]]) + "\n")
    writes = write_batches(Lake(tmp_path / "lake"), load_file(path))
    assert writes[0].reasons == {"duplicate_row": 2}  # both snapshots of the repeated row
    assert (
        read_partition(Lake(tmp_path / "lake"), OPTION_QUOTES, "AAPL", date(2024, 1, 4)).height == 8
    )


def _replace_line(text: str, number: int, old: str, new: str) -> str:
    lines = text.splitlines()
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        (
            "corrupt.zip",
            lambda t: b"PK\x03\x04 not really a zip",
            r"corrupt\.zip: corrupt zip file",
        ),
        (
            "truncated.csv",
            lambda t: t[: len(t) // 2].encode(),
            r"truncated\.csv: line \d+ has \d+ fields",
        ),
        (
            "renamed.csv",
            lambda t: t.replace("bid_1545", "bid_15_45", 1).encode(),
            r"renamed\.csv: not a CBOE Option EOD Summary layout: missing column\(s\) bid_1545",
        ),
        (
            "text_in_number.csv",
            lambda t: _replace_line(t, 4, "185.000", "abc").encode(),
            r"text_in_number\.csv: line 4, column 'strike': 'abc' is not a number",
        ),
        (
            "us_dates.csv",
            lambda t: _replace_line(t, 4, "2024-01-04", "01/04/2024").encode(),
            r"us_dates\.csv: line 4, column 'quote_date': '01/04/2024' is not a YYYY-MM-DD date",
        ),
        (
            "other.csv",
            lambda t: b"date,symbol,price\n2024-01-02,SPY,470\n",
            r"other\.csv: not a CBOE",
        ),
        ("empty.csv", lambda t: b"", r"empty\.csv: empty file"),
        (
            "holiday.csv",
            lambda t: t.replace("2024-01-04", "2024-01-01").encode(),
            r"holiday\.csv: quote_date 2024-01-01 is not an exchange session",
        ),
        (
            "extra.csv",
            lambda t: (
                t.replace("delivery_code", "delivery_code,mystery", 1)
                .replace("\n", ",\n")
                .replace("mystery,", "mystery", 1)
                .encode()
            ),
            r"extra\.csv: unknown column\(s\) mystery",
        ),
    ],
)
def test_bad_files_fail_with_the_file_line_and_column(
    tmp_path: Path, name: str, make: object, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(make(PLAIN.read_text()))  # type: ignore[operator]
    with pytest.raises(SourceError, match=message):
        load_file(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_parse_or_fail_with_a_source_error(data: st.DataObject) -> None:
    """Fuzz: random edits of a valid file never escape as anything but SourceError."""
    original = bytearray(PLAIN.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(original) - 1))
        action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        byte = data.draw(st.sampled_from(list(b',\n0123456789.-x"')))
        if action == "replace":
            original[position] = byte
        elif action == "delete":
            del original[position]
        else:
            original.insert(position, byte)
    message = "fuzz.csv: "  # parsed fine, or a SourceError that names the file
    try:
        parse_eod_summary(bytes(original), "fuzz.csv")
    except SourceError as exc:
        message = str(exc)
    assert message.startswith("fuzz.csv: ")


def test_padded_fields_take_the_text_path_and_parse_the_same(tmp_path: Path) -> None:
    padded = (
        PLAIN.read_text().replace(",2.00,", ", 2.00 ,").replace(",2024-01-19,", ", 2024-01-19,")
    )
    assert padded != PLAIN.read_text()
    assert _quotes(_write(tmp_path, "padded.csv", padded)).equals(_quotes(PLAIN))
