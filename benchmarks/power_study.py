"""The pipeline's power against the oracle, across seeds: how often the walk-forward
LightGBM finds a planted edge, how often it "finds" one where nothing was planted,
and how much of the findable edge (the oracle's IC) it reaches.

Run::

    python benchmarks/power_study.py [--sizes 2x4,4x3,8x4] [--seeds 10] [--vrp 0,default]
        [--variants default,shallow,linear,tuned8] [--label straddle_dh_ret] [--horizon 5]
        [--workers 2]
        [--cache DIR] [--json FILE]
    python benchmarks/power_study.py --table FILE [FILE ...]   # the table of saved rows

For every size (underlyings x years, to 2023-12-29), seed, signal (``planted`` and
``none``) and variance risk premium (``0``: options priced fair; ``default``: each
underlying's own, 0.3), a synthetic market is built with its features (kept under
``--cache``: a rerun builds only what is missing) and the label is walked forward
over 5 outer folds by each variant: ``default`` (LightGBM with the default
parameters), ``shallow`` (``SHALLOW``: small trees, large leaves, strong L2, for weak
signals), ``linear`` (the ridge baseline) and ``tunedN`` (Optuna, N trials inside each
training window). On planted markets the oracle (the label fitted on the generator's own
mispricing, same folds) stands beside the model. Per group (size, label: ``dh`` for
``straddle_dh_ret``, ``mv`` for ``straddle_mv_ret``; premium, variant) it prints:

* ``found``: seeds where the planted edge is found (one-sided 1%: IC t > 2.33);
  ``oracle``: seeds where the oracle finds it; ``found|oracle``: found among those;
* ``false``: no-signal seeds with an "edge" (two-sided 1%: |IC t| > 2.58; the test's
  level implies 1 in 100);
* mean IC (the headline ``ic`` of ``models.metrics``: across underlyings where a
  market has 3 or more, else the trailing IC: over time, against means known at each
  snapshot), mean oracle IC, the efficiency (mean IC over mean oracle IC) and the null
  IC (mean IC on the no-signal markets); then the same means of the demeaned IC,
  which credits a model following the volatility level with an IC it does not have
  (``models.metrics``). Rows saved before the trailing IC existed (``--table``) show
  their demeaned headline, flagged ``*``.

Markets are built and evaluated in ``--workers`` processes; the run says how long
it took. ``--json`` keeps every row, rewritten after each market (a run cut short
keeps what it finished); ``--table`` prints the table of one or more such files
(runs of different sizes or seeds together). Not a timed test: a benchmark of
statistical power.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.markets import Market, build, sized
from data_lake.lake import Lake
from models.dataset import load_dataset
from models.oracle import load_truth, oracle_metrics
from models.walkforward import run_walk_forward

FOUND_T, FALSE_T = 2.33, 2.58
SHALLOW: dict[str, Any] = {
    "learning_rate": 0.02, "num_leaves": 4, "max_depth": 2, "min_data_in_leaf": 100,
    "feature_fraction": 0.5, "lambda_l2": 10.0,
}  # fmt: skip


def walk(dataset: Any, variant: str) -> Any:
    if variant == "default":
        return run_walk_forward(dataset, 5)
    if variant == "shallow":
        return run_walk_forward(dataset, 5, params=SHALLOW)
    if variant == "linear":
        return run_walk_forward(dataset, 5, model="linear")
    if variant.startswith("tuned"):
        return run_walk_forward(dataset, 5, trials=int(variant.removeprefix("tuned")))
    raise SystemExit(f"unknown variant {variant!r}: default, shallow, linear or tunedN")


def evaluate_market(
    cache: Path, market: Market, label: str, horizon: int, variants: list[str]
) -> list[dict[str, Any]]:
    """Build (or reuse) one market and walk the label forward with each variant."""
    root, seconds = build(cache, market)
    lake = Lake(root, durable=False)
    dataset = load_dataset(lake, None, label, horizon)
    truth = load_truth(lake)
    rows = []
    for variant in variants:
        started = time.perf_counter()
        result = walk(dataset, variant)
        oracle = oracle_metrics(dataset.frame, truth, result.folds, horizon)
        rows.append({
            "size": f"{len(market.underlyings)}x{market.end.year - market.start.year + 1}",
            "signal": market.signal, "vrp": "default" if market.vrp is None else f"{market.vrp:g}",
            "seed": market.seed, "variant": variant, "label": label, "n": result.overall["n"],
            "ic": result.overall["ic"], "ic_tstat": result.overall["ic_tstat"],
            "oracle_ic": oracle["ic"] if oracle else None,
            "oracle_tstat": oracle["ic_tstat"] if oracle else None,
            "build_s": seconds, "fit_s": time.perf_counter() - started,
            "metrics": result.overall, "oracle_metrics": oracle,
        })  # fmt: skip
    return rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def table(rows: list[dict[str, Any]]) -> list[str]:
    groups: dict[tuple[str, str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        label = row.get("label", "straddle_dh_ret").removeprefix("straddle_").removesuffix("_ret")
        groups[(row["size"], label, row["vrp"], row["signal"], row["variant"])].append(row)
    lines = [f"{'size':5} {'label':5} {'vrp':8} {'variant':8} {'seeds':>5}  {'found':>5} "
             f"{'oracle':>6} {'found|oracle':>12} {'false':>5}  {'mean IC':>7} {'oracle IC':>9} "
             f"{'efficiency':>10} {'null IC':>7}  {'demeaned: IC':>12} {'null IC':>7}"]  # fmt: skip
    for size, label, vrp, variant in sorted({(k[0], k[1], k[2], k[4]) for k in groups}):
        planted = groups.get((size, label, vrp, "planted", variant), [])
        none = groups.get((size, label, vrp, "none", variant), [])
        found = [r for r in planted if r["ic_tstat"] > FOUND_T]
        seen = [r for r in planted if (r["oracle_tstat"] or 0) > FOUND_T]
        both = [r for r in seen if r["ic_tstat"] > FOUND_T]
        false = [r for r in none if abs(r["ic_tstat"]) > FALSE_T]
        ic = _mean([r["ic"] for r in planted])
        oracle = _mean([r["oracle_ic"] for r in planted if r["oracle_ic"] is not None])
        null = _mean([r["ic"] for r in none])
        demeaned = _mean([r["metrics"]["ic_demeaned"] for r in planted])
        demeaned_null = _mean([r["metrics"]["ic_demeaned"] for r in none])
        old = any(r["metrics"].get("ic_is_cross_section") == 0.0
                  and "ic_trailing" not in r["metrics"] for r in planted + none)  # fmt: skip
        lines.append(
            f"{size + '*' * old:5} {label:5} {vrp:8} {variant:8} {max(len(planted), len(none)):5}  "
            f"{len(found):2}/{len(planted):<2} "
            f"{len(seen):3}/{len(planted):<2} {len(both):9}/{len(seen):<2} "
            f"{len(false):2}/{len(none):<2}  {ic:+7.3f} {oracle:+9.3f} {ic / oracle:10.2f} "
            f"{null:+7.3f}  {demeaned:+12.3f} {demeaned_null:+7.3f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2x4,4x3,8x4")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument("--vrp", default="0,default")
    parser.add_argument("--variants", default="default,shallow,linear,tuned8")
    parser.add_argument("--signals", default="planted,none")
    parser.add_argument("--label", default="straddle_dh_ret")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(".power-markets"))
    parser.add_argument("--json", type=Path, default=None, help="write every row here")
    parser.add_argument("--table", type=Path, nargs="+", default=None,
                        help="print the table of rows saved by --json, and stop")  # fmt: skip
    args = parser.parse_args()
    if args.table:
        saved = [row for path in args.table for row in json.loads(path.read_text())]
        print("\n".join(table(saved)))
        return
    variants = args.variants.split(",")
    # seed by seed, every group of a seed together: a run cut short has whole seeds
    markets = [
        sized(int(n), int(years), signal=signal, vrp=None if vrp == "default" else float(vrp),
              seed=seed)
        for size in args.sizes.split(",") for n, years in [size.split("x")]
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        for vrp in args.vrp.split(",") for signal in args.signals.split(",")
    ]  # fmt: skip
    print(f"power_study: {len(markets)} markets (sizes {args.sizes}, {args.seeds} seeds from "
          f"{args.first_seed}, vrp {args.vrp}, {args.signals}), {args.label} h={args.horizon}, "
          f"5 folds, variants {args.variants}, {args.workers} workers", flush=True)  # fmt: skip
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=spawn) as pool:
        futures = [pool.submit(evaluate_market, args.cache, m, args.label, args.horizon, variants)
                   for m in markets]  # fmt: skip
        for done, future in enumerate(as_completed(futures), 1):
            got = future.result()
            rows += got
            r = got[0]
            models = ", ".join(
                f"{g['variant']} {g['ic']:+.3f} (t {g['ic_tstat']:+.2f})" for g in got
            )
            print(f"  [{done}/{len(markets)}] {r['size']} {r['signal']:7} vrp {r['vrp']:7} "
                  f"seed {r['seed']}: IC {models}"
                  + (f"; oracle {r['oracle_ic']:+.3f} (t {r['oracle_tstat']:+.2f})"
                     if r["oracle_ic"] is not None else "")
                  + f"; built in {r['build_s']:.0f} s", flush=True)  # fmt: skip
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    elapsed = time.perf_counter() - started
    print()
    print("\n".join(table(rows)))
    print(f"\n{len(markets)} markets in {elapsed / 60:.1f} min on {args.workers} workers")


if __name__ == "__main__":
    main()
