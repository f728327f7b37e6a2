"""Synthetic markets for the model benchmarks, built once and kept (a ``_built`` marker
says a market is complete; a market cut short by a crash is rebuilt)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from data_lake.ingest import chunked, write_batches
from data_lake.lake import Lake
from data_lake.sources.synthetic import DEFAULT_UNIVERSE, SyntheticConfig, generate
from data_lake.sources.synthetic_market import GENERATOR_VERSION
from tasks.feature_build import FeatureInputs, build_underlying

UNIVERSE = ("SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT", "AMZN", "NVDA")
LAST_SESSION = date(2023, 12, 29)


@dataclass(frozen=True)
class Market:
    underlyings: tuple[str, ...]
    start: date
    end: date
    signal: str  # "none" or "planted"
    vrp: float | None  # None: each underlying's own premium (0.3); 0: priced fair
    seed: int
    planted_sd: float = 0.06

    @property
    def name(self) -> str:
        vrp = "default" if self.vrp is None else f"{self.vrp:g}"
        return (f"{self.signal}-{'.'.join(self.underlyings)}-{self.start}-{self.end}-vrp{vrp}"
                f"-sd{self.planted_sd:g}-seed{self.seed}-gen{GENERATOR_VERSION}")  # fmt: skip


def sized(n_underlyings: int, years: int, **kwargs: object) -> Market:
    """The first ``n_underlyings`` of ``UNIVERSE`` over the ``years`` to 2023-12-29."""
    start = date(LAST_SESSION.year - years + 1, 1, 2)
    return Market(UNIVERSE[:n_underlyings], start, LAST_SESSION, **kwargs)  # type: ignore[arg-type]


def build(root: Path, market: Market) -> tuple[Path, float]:
    """The market's lake with its features under ``root`` (kept: built once); its root
    and the seconds the build took (0 when it was kept)."""
    started = time.perf_counter()
    lake = Lake(root / market.name, durable=False)
    done = lake.root / "_built"
    if done.exists():
        return lake.root, 0.0
    if lake.root.exists():
        shutil.rmtree(lake.root)  # a build cut short
    config = SyntheticConfig(
        seed=market.seed,
        signal=market.signal,  # type: ignore[arg-type]
        variance_risk_premium=market.vrp,
        planted_sd=market.planted_sd,
        strikes_per_sd=3.0,  # small chains: every feature and label still has contracts
        expiry_months=4,
    )
    for underlying in market.underlyings:
        for chunk in chunked(generate(underlying, market.start, market.end, config), 20):
            write_batches(lake, chunk)
        # the generator's own dividend yield, as a dividend table would give it
        dividend_yield = DEFAULT_UNIVERSE[underlying].dividend_yield
        build_underlying(
            lake, underlying, FeatureInputs("PCREDIT8", 0.04, 1, dividend_yield, (1, 5))
        )
    done.write_text("built\n")
    return lake.root, time.perf_counter() - started
