"""Out-of-sample edge of the walk-forward LightGBM on the synthetic market: no signal,
planted signal, and the leaky variants (the evidence behind ``tests/models/test_edge``,
on a bigger market than the tests can afford).

Run::

    python benchmarks/walkforward_signal.py [--underlyings SPY,QQQ,...] [--start 2020-01-02]
        [--end 2023-12-29] [--vrp 0] [--planted-sd 0.06]

Builds one synthetic lake per world (``--signal none`` and ``planted``, the variance
risk premium ``--vrp``, default 0: options priced fair) with its features, in two
processes, then runs 5 outer folds for the straddle label at h=5 and h=1: honest
(purged, embargoed), walk-forward without purge (``no_purge``) and shuffled k-fold
(``shuffled_kfold``). Prints IC and its Newey-West t statistic, rank IC, and the sign
strategy's Sharpe net and gross of costs with their t statistics.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_lake.ingest import chunked, write_batches
from data_lake.lake import Lake
from data_lake.sources.synthetic import SyntheticConfig, generate
from models.dataset import load_dataset
from models.walkforward import LEAKS, run_walk_forward
from tasks.feature_build import FeatureInputs, build_underlying

LABELS = (("straddle_dh_ret", 5), ("straddle_dh_ret", 1))


def build(root: Path, signal: str, args: argparse.Namespace) -> tuple[Path, float]:
    started = time.perf_counter()
    config = SyntheticConfig(
        signal=signal,  # type: ignore[arg-type]
        variance_risk_premium=args.vrp,
        planted_sd=args.planted_sd,
        strikes_per_sd=3.0,
        expiry_months=4,
    )
    lake = Lake(root / signal, durable=False)
    for underlying in args.underlyings.split(","):
        for chunk in chunked(generate(underlying, args.start, args.end, config), 20):
            write_batches(lake, chunk)
        build_underlying(lake, underlying, FeatureInputs("PCREDIT8", 0.04, 1, 0.01, (1, 5)))
    return lake.root, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--underlyings", default="SPY,QQQ,IWM,DIA,AAPL,MSFT,AMZN,NVDA")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2020, 1, 2))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2023, 12, 29))
    parser.add_argument("--vrp", type=float, default=0.0)
    parser.add_argument("--planted-sd", type=float, default=0.06)
    args = parser.parse_args()
    print(f"walkforward_signal: {args.underlyings}, {args.start}..{args.end}, vrp {args.vrp}, "
          f"planted sd {args.planted_sd}, 5 outer folds, default parameters")  # fmt: skip
    signals = ("none", "planted")
    with tempfile.TemporaryDirectory() as tmp:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
            built = list(pool.map(build, [Path(tmp)] * 2, signals, [args] * 2))
        for signal, (root, seconds) in zip(signals, built, strict=True):
            print(f"\n{signal}: lake and features built in {seconds:.0f} s")
            print(f"  {'label':18} {'h':>2} {'validation':15} {'n':>5} {'ic':>7} {'t':>6} "
                  f"{'rank_ic':>8} {'sharpe net':>10} {'t':>6} {'gross':>6} {'t':>6}")  # fmt: skip
            lake = Lake(root, durable=False)
            for label, horizon in LABELS:
                dataset = load_dataset(lake, None, label, horizon)
                for leak in LEAKS:
                    o = run_walk_forward(dataset, 5, leak=leak).overall  # type: ignore[arg-type]
                    print(f"  {label:18} {horizon:2} {leak:15} {int(o['n']):5} {o['ic']:+7.3f} "
                          f"{o['ic_tstat']:+6.2f} {o['rank_ic']:+8.3f} {o['sharpe_net']:+10.2f} "
                          f"{o['sharpe_net_tstat']:+6.2f} {o['sharpe_gross']:+6.2f} "
                          f"{o['sharpe_gross_tstat']:+6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
