"""Walk-forward tuning throughput: one process against two worker processes on one study.

Run::

    python benchmarks/bench_tuning.py [--years 3] [--trials 30] [--folds 5]

Builds a synthetic lake (SPY and QQQ, ``--years`` of daily sessions, not timed) and
its features, then for the last outer fold's training window (the largest) runs an
Optuna study of ``--trials`` trials: once in this process, once split between two
worker processes sharing a JournalStorage file (``--trials / 2`` each). Reports wall
time and trials per minute. Each LightGBM fit uses one thread, so two workers use the
machine's two cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from data_lake.ingest import chunked, write_batches
from data_lake.lake import Lake
from data_lake.sources.synthetic import SyntheticConfig, generate
from models.dataset import load_dataset
from models.splits import inner_split, walk_forward
from models.tuning import tune
from tasks.feature_build import FeatureInputs, build_underlying

WORKER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
import numpy as np
from data_lake.lake import Lake
from models.dataset import load_dataset
from models.tuning import tune
data = load_dataset(Lake(Path({lake!r})), None, "straddle_dh_ret", 5)
fit, validation = np.load({fit!r}), np.load({validation!r})
tune(data.features, data.frame["y"].to_numpy(), fit, validation, trials={trials}, seed={seed},
     storage={storage!r}, study_name="bench")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    repo = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        start, end = date(2024 - args.years, 1, 2), date(2023, 12, 29)
        started = time.perf_counter()
        for underlying in ("SPY", "QQQ"):
            for chunk in chunked(generate(underlying, start, end, SyntheticConfig()), 20):
                write_batches(lake, chunk)
            build_underlying(lake, underlying, FeatureInputs("PCREDIT8", 0.04, 1, 0.01, (1, 5)))
        data = load_dataset(lake, None, "straddle_dh_ret", 5)
        folds = walk_forward(data.frame["t"], data.frame["t_end"], args.folds, horizon=5)
        fit, validation = inner_split(data.frame["t"], data.frame["t_end"], folds[-1].train,
                                      horizon=5)  # fmt: skip
        print(f"bench_tuning: SPY+QQQ {start}..{end}, {data.frame.height:,} rows, "
              f"{args.folds} outer folds; last training window {len(folds[-1].train):,} rows "
              f"(fit {len(fit):,}, validation {len(validation):,}); setup "
              f"{time.perf_counter() - started:.0f} s\n")  # fmt: skip
        y = data.frame["y"].to_numpy()
        started = time.perf_counter()
        one = tune(data.features, y, fit, validation, trials=args.trials, seed=1)
        single = time.perf_counter() - started
        np.save(Path(tmp) / "fit.npy", fit)
        np.save(Path(tmp) / "validation.npy", validation)
        journal = str(Path(tmp) / "journal.log")
        started = time.perf_counter()

        def worker(seed: int) -> subprocess.Popen[bytes]:
            code = WORKER.format(
                repo=repo, lake=str(lake.root), fit=str(Path(tmp) / "fit.npy"),
                validation=str(Path(tmp) / "validation.npy"), trials=args.trials // 2,
                seed=seed, storage=journal,
            )  # fmt: skip
            return subprocess.Popen([sys.executable, "-c", code])

        workers = [worker(1), worker(2)]
        codes = [w.wait() for w in workers]
        double = time.perf_counter() - started
        if codes != [0, 0]:
            raise SystemExit(f"workers failed: {codes}")
        print(f"{'mode':24} {'trials':>6} {'wall s':>8} {'trials/min':>11}")
        print(f"{'one process':24} {args.trials:6} {single:8.1f} {60 * args.trials / single:11.1f}"
              f"   (pruned {one.pruned}, best validation rank IC {one.value:+.3f})")  # fmt: skip
        print(f"{'two workers, one study':24} {args.trials:6} {double:8.1f} "
              f"{60 * args.trials / double:11.1f}   ({single / double:.2f}x; includes each "
              "worker's start and data load)")  # fmt: skip


if __name__ == "__main__":
    main()
