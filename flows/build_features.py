"""The ``build-features`` flow: IV/Greeks per contract, surface features and labels.

Incremental: for each underlying only the quote days not built yet (and the last
built day, which may have gained snapshots) are computed; ``full`` rebuilds every day
in range. Labels are rewritten for the new days and the days whose horizon reaches
into them. One task per underlying in a bounded thread pool; a failing underlying is
reported and the others complete.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, model_validator

from data_lake.lake import iter_partitions, validate_symbol
from data_lake.schemas import OPTION_QUOTES
from data_lake.sources.synthetic import DEFAULT_UNIVERSE
from flows.fanout import gather_results
from flows.settings import Settings, SymbolList, load_settings
from tasks.failures import fails_cleanly
from tasks.feature_build import FeatureInputs, build_features_task


class FeatureParams(BaseModel):
    """Parameters of a build-features run (validated before any work starts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    underlyings: SymbolList | None = None  # default: every underlying with quotes
    start: date | None = None
    end: date | None = None
    full: bool = False

    @model_validator(mode="after")
    def _check_range(self) -> FeatureParams:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end date {self.end} is before start date {self.start}")
        return self


def feature_inputs(settings: Settings, underlying: str) -> FeatureInputs:
    configured = settings.features.dividend_yields.get(underlying)
    synthetic = settings.synthetic.universe.get(underlying) or DEFAULT_UNIVERSE.get(underlying)
    fallback = (
        configured
        if configured is not None
        else (synthetic.dividend_yield if synthetic is not None else 0.0)
    )
    return FeatureInputs(
        rate_series=settings.rates.series,
        rate_fallback=settings.rates.fallback,
        publication_lag_days=settings.rates.publication_lag_days,
        fallback_div_yield=fallback,
        horizons=settings.features.horizons,
        source_preference=settings.features.source_preference,
    )


def run_build(params: FeatureParams, settings: Settings) -> dict[str, Any]:
    lake = settings.lake
    lake.ensure_writable()
    stored = sorted({p.underlying for p in iter_partitions(lake, OPTION_QUOTES.name)})
    wanted = [validate_symbol(u) for u in params.underlyings] if params.underlyings else stored
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(
        max_workers=settings.ingest.concurrency
    )
    futures: dict[str, PrefectFuture[dict[str, object]]] = {}
    summary: dict[str, Any] = {"lake": str(lake.root), "underlyings": {}, "failed": {}}
    with runner:
        for underlying in wanted:
            if underlying not in stored:
                summary["failed"][underlying] = (
                    f"no option quotes for {underlying} in the lake: ingest it first "
                    "(volflow ingest ...)"
                )
                continue
            args = {
                "lake": lake,
                "underlying": underlying,
                "inputs": feature_inputs(settings, underlying),
                "start": params.start,
                "end": params.end,
                "full": params.full,
            }
            futures[underlying] = runner.submit(build_features_task, args)
        return gather_results(futures, summary, "underlyings")


@flow(name="build-features", validate_parameters=True)
@fails_cleanly
def build_features(params: FeatureParams | None = None) -> dict[str, Any]:
    """IV/Greeks, surface features and labels for new partitions (all with ``full``)."""
    return run_build(params or FeatureParams(), load_settings())
