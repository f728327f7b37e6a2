"""The synthetic markets of the edge tests (``test_edge``), importable by the worker
processes that build them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from data_lake.ingest import chunked, write_batches
from data_lake.lake import Lake
from data_lake.sources.synthetic import DEFAULT_UNIVERSE, SyntheticConfig, generate
from tasks.feature_build import FeatureInputs, build_underlying

UNDERLYINGS = ("SPY", "QQQ", "IWM", "DIA")
START, END = date(2021, 1, 4), date(2023, 12, 29)


def build_world(root: Path, signal: str, seed: int, planted_sd: float = 0.06) -> Path:
    """A fair (zero-VRP) synthetic market of ``seed`` with its features under
    ``root/signal-seed``; small chains for speed (3 strikes per standard deviation, 4
    monthly expiries: every feature and label still has its contracts). Returns the
    lake's root."""
    config = SyntheticConfig(
        seed=seed,
        signal=signal,  # type: ignore[arg-type]
        planted_sd=planted_sd,
        variance_risk_premium=0.0,
        strikes_per_sd=3.0,
        expiry_months=4,
    )
    lake = Lake(root / f"{signal}-{seed}-sd{planted_sd:g}" / "lake", durable=False)
    for underlying in UNDERLYINGS:
        for chunk in chunked(generate(underlying, START, END, config), 20):
            write_batches(lake, chunk)
        # the generator's own dividend yield (0.006 QQQ .. 0.018 DIA), as a user's
        # dividend table would give it, not one yield for all
        dividend_yield = DEFAULT_UNIVERSE[underlying].dividend_yield
        inputs = FeatureInputs("PCREDIT8", 0.04, 1, dividend_yield, (1, 5))
        build_underlying(lake, underlying, inputs)
    return lake.root
