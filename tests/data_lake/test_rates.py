from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from data_lake.catalog import query
from data_lake.errors import SourceError
from data_lake.lake import Lake
from data_lake.rates import import_rate_file, parse_rate_csv, rates_asof, read_series

LEAN_RATES = (
    Path(__file__).resolve().parents[1] / "fixtures" / "lean" / "alternative" / "interest-rate"
    / "usa" / "interest-rate.csv"
)  # fmt: skip
FRED = b"observation_date,DGS3MO\n2024-01-02,5.46\n2024-01-03,.\n2024-01-04,5.48\n"


def test_lean_series_is_stored_as_decimals_by_effective_date(lake: Lake) -> None:
    assert import_rate_file(lake, LEAN_RATES) == ("PCREDIT8", 56)
    series = read_series(lake, "PCREDIT8")
    assert series.row(0) == (date(2003, 1, 9), 0.0225, "lean")
    assert series["date"].is_sorted()


def test_fred_series_skips_missing_days() -> None:
    name, frame = parse_rate_csv(FRED, "fred.csv")
    assert name == "DGS3MO" and frame["rate"].to_list() == [0.0546, 0.0548]


def test_asof_lookup_takes_the_last_rate_on_or_before_each_day_else_the_fallback() -> None:
    _, frame = parse_rate_csv(FRED, "fred.csv")
    days = [date(2024, 1, 3), date(2023, 12, 29), date(2024, 1, 4)]
    found = rates_asof(frame, days, fallback=0.04)
    assert found["date"].to_list() == days  # in the order asked
    assert found["rate"].to_list() == [0.0546, 0.04, 0.0548]
    assert found["rate_source"].to_list() == ["fred", "fallback", "fred"]
    empty = rates_asof(frame.clear(), days, fallback=0.03)
    assert empty["rate"].to_list() == [0.03] * 3


def test_publication_lag_keeps_a_day_from_using_a_rate_released_after_it() -> None:
    _, frame = parse_rate_csv(FRED, "fred.csv")  # 2024-01-02 5.46%, (01-03 missing), 01-04 5.48%
    days = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)]
    lagged = rates_asof(frame, days, fallback=0.04, publication_lag_days=1)
    # 01-02's value is out on 01-03; 01-04's on 01-05
    assert lagged["rate"].to_list() == [0.04, 0.0546, 0.0546, 0.0548]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"date,symbol,price\n2024-01-02,SPY,1\n", "not a rate series"),
        (b"DATE,DGS3MO\n2024-01-02,5.4\n01/03/2024,5.5\n", r"line 3: '01/03/2024','5.5'"),
        (b"DATE,DGS3MO\n2024-01-02,abc\n", r"line 2: '2024-01-02','abc'"),
        (b"DATE,DGS3MO\n2024-01-02,540\n", "above 50%"),
        (b"DATE,DGS3MO\n2024-01-02,5.4\n2024-01-02,5.5\n", "a date appears twice"),
        (b"DATE,DGS3MO\n2024-01-02,.\n", "no rate values"),
    ],
)
def test_bad_rate_files_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_rate_csv(data, "bad.csv")


def test_a_bad_file_leaves_the_stored_series_as_it_was(lake: Lake, tmp_path: Path) -> None:
    import_rate_file(lake, LEAN_RATES)
    before = read_series(lake, "PCREDIT8")
    bad = tmp_path / "rates.csv"
    bad.write_bytes(b"DATE,PCREDIT8\n2024-01-02,abc\n")
    with pytest.raises(SourceError):
        import_rate_file(lake, bad)
    assert read_series(lake, "PCREDIT8").equals(before)


def test_rates_view_lists_every_series(lake: Lake, tmp_path: Path) -> None:
    assert query(lake, "SELECT count(*) AS n FROM rates")["n"][0] == 0
    import_rate_file(lake, LEAN_RATES)
    fred = tmp_path / "fred.csv"
    fred.write_bytes(FRED)
    import_rate_file(lake, fred, series="tbill_3m")
    counts = query(lake, "SELECT series, count(*) AS n FROM rates GROUP BY ALL ORDER BY 1")
    assert counts.rows() == [("PCREDIT8", 56), ("TBILL_3M", 2)]
    assert isinstance(counts, pl.DataFrame)
