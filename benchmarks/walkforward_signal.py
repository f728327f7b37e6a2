"""Out-of-sample edge of the walk-forward LightGBM on the synthetic market: no signal,
planted signal, and the leaky variants (the evidence behind ``tests/models/test_edge``,
on a bigger market than the tests can afford).

Run::

    python benchmarks/walkforward_signal.py [--underlyings SPY,QQQ,...] [--start 2020-01-02]
        [--end 2023-12-29] [--vrp 0] [--planted-sd 0.06] [--seed 7] [--keep DIR]

Builds one synthetic lake per world (``--signal none`` and ``planted``, the variance
risk premium ``--vrp``, default 0: options priced fair) with its features, in two
processes, then runs 5 outer folds for the straddle label at h=5 and h=1: honest
(purged, embargoed), walk-forward without purge (``no_purge``) and shuffled k-fold
(``shuffled_kfold``), and the ridge baseline (``linear``) on the honest folds, for
``straddle_dh_ret`` at h=5 and h=1 and ``straddle_mv_ret`` at h=5. Prints the headline
IC (``models.metrics``: across underlyings with 3 or more) and its Newey-West t
statistic, the pooled IC, the sign strategy's Sharpe net and gross of costs (long-run
variance) with their t statistics, and on the planted world the oracle's IC (the label fitted on the
generator's own mispricing, same folds) and the model's share of it. Dividend yields
are each underlying's own (the generator's). ``--keep DIR`` keeps the markets there
and reuses them on the next run with the same arguments.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.markets import Market
from benchmarks.markets import build as build_market
from data_lake.lake import Lake
from models.dataset import load_dataset
from models.oracle import efficiency, load_truth, oracle_metrics
from models.walkforward import LEAKS, run_walk_forward

LABELS = (("straddle_dh_ret", 5), ("straddle_mv_ret", 5), ("straddle_dh_ret", 1))


def build(root: Path, signal: str, args: argparse.Namespace) -> tuple[Path, float]:
    market = Market(
        tuple(args.underlyings.split(",")), args.start, args.end, signal, args.vrp, args.seed,
        args.planted_sd,
    )  # fmt: skip
    return build_market(root, market)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--underlyings", default="SPY,QQQ,IWM,DIA,AAPL,MSFT,AMZN,NVDA")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2020, 1, 2))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2023, 12, 29))
    parser.add_argument("--vrp", type=float, default=0.0)
    parser.add_argument("--planted-sd", type=float, default=0.06)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="keep the markets here")
    args = parser.parse_args()
    print(f"walkforward_signal: {args.underlyings}, {args.start}..{args.end}, vrp {args.vrp}, "
          f"planted sd {args.planted_sd}, 5 outer folds, default parameters")  # fmt: skip
    signals = ("none", "planted")
    with tempfile.TemporaryDirectory() as tmp:
        root_dir = args.keep or Path(tmp)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
            built = list(pool.map(build, [root_dir] * 2, signals, [args] * 2))
        for signal, (root, seconds) in zip(signals, built, strict=True):
            print(f"\n{signal}: lake and features built in {seconds:.0f} s (0: kept)")
            print(f"  {'label':16} {'h':>2} {'validation':14} {'n':>5} {'ic':>7} {'t':>6} "
                  f"{'pooled':>7} {'net Sharpe':>10} {'t':>6} {'gross':>6} {'t':>6} "
                  f"{'oracle':>7} {'share':>6}")  # fmt: skip
            lake = Lake(root, durable=False)
            truth = load_truth(lake)
            for label, horizon in LABELS:
                dataset = load_dataset(lake, None, label, horizon)
                for leak in (*LEAKS, "linear"):
                    result = (
                        run_walk_forward(dataset, 5, model="linear") if leak == "linear"
                        else run_walk_forward(dataset, 5, leak=leak)  # type: ignore[arg-type]
                    )  # fmt: skip
                    o = result.overall
                    oracle = oracle_metrics(dataset.frame, truth, result.folds, horizon)
                    ceiling = oracle["ic"] if oracle and leak in ("none", "linear") else None
                    tail = (f" {ceiling:+7.3f} {efficiency(o['ic'], ceiling):6.2f}"
                            if ceiling is not None else "")  # fmt: skip
                    print(f"  {label:16} {horizon:2} {leak:14} {int(o['n']):5} {o['ic']:+7.3f} "
                          f"{o['ic_tstat']:+6.2f} {o['ic_pooled']:+7.3f} {o['sharpe_net']:+10.2f} "
                          f"{o['sharpe_net_tstat']:+6.2f} {o['sharpe_gross']:+6.2f} "
                          f"{o['sharpe_gross_tstat']:+6.2f}{tail}")  # fmt: skip


if __name__ == "__main__":
    main()
