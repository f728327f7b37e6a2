"""Proof that the walk-forward pipeline neither invents nor misses an edge.

On synthetic markets (4 underlyings, 2021-2023, daily; seeds ``SEEDS``), through the
real pipeline (generated chains -> lake -> option analytics, surface features, labels
-> dataset -> purged walk-forward LightGBM), with the default label (the delta-hedged
ATM straddle return, h=5, and h=1 for the no-signal worlds). The IC is the headline
one of ``models.metrics``: across the underlyings of each snapshot (an IC demeaned
within each test window credits a model that follows the volatility level with an
edge it does not have: +0.067 on average on eight fair markets).

* **no signal** (``signal="none"``, ``variance_risk_premium=0``: options priced at
  their expected payoff, so no return is predictable): the out-of-sample IC and the
  gross strategy Sharpe are statistically indistinguishable from zero and the net
  Sharpe is not significantly positive, on every seed, for LightGBM, the ridge
  baseline and Optuna-tuned LightGBM. Test: two-sided at 1% for the family of a
  test's checks (Bonferroni over its IC and gross-Sharpe checks on all seeds:
  ``|t| < no_edge_t(k)``), with Newey-West t statistics over the snapshot series
  (``models.metrics``: overlapping labels make rows dependent).
* **planted signal** (the AR(1) front-tenor mispricing at twice the default strength,
  sd 0.12, phi 0.8; the default sd 0.06 is at the limit of detection on a market
  this size even for the oracle, see the power study in docs/MODELS.md): the IC is
  positive on every seed and clearly so on the seeds together (Stouffer's combined
  t, ``sum(t) / sqrt(seeds) > 2.33``, one-sided 1%), as is the oracle's (the label
  fitted on the generator's own mispricing on the same folds), and the model reaches
  a share of the oracle's IC no larger than noise allows.
* **leaky variant** (shuffled K-fold: no time order, no purge, no embargo, so test
  rows have training neighbours sharing 4 of their 5 label days) on a no-signal
  world: IC ``t > 5`` and a positive net Sharpe, where the honest run finds nothing.
  The test has teeth.

The variance risk premium is off in all worlds: with it (default 0.3) short
straddles earn on average, a real premium that a sign strategy harvests, not an
invented edge (docs/MODELS.md). Everything is seeded: the same numbers every run.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from statistics import NormalDist

import pytest

from data_lake.lake import Lake
from models.dataset import Dataset, load_dataset
from models.oracle import efficiency, load_truth, oracle_metrics
from models.walkforward import run_walk_forward
from tests.models.edge_worlds import UNDERLYINGS, build_world

pytestmark = pytest.mark.slow

FOLDS = 5
LABEL = "straddle_dh_ret"
SEEDS = (7, 8)
PLANTED_SD = 0.12
ONE_SIDED_1PCT = 2.33
WORLDS = [("none", seed, 0.06) for seed in SEEDS] + [("planted", s, PLANTED_SD) for s in SEEDS]


def no_edge_t(checks: int) -> float:
    """The two-sided 1% threshold for a family of ``checks`` t statistics (Bonferroni)."""
    return float(NormalDist().inv_cdf(1 - 0.005 / checks))


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Lake]:
    """Every market, built in two fresh processes (one per core)."""
    root = tmp_path_factory.mktemp("edge")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        roots = list(pool.map(build_world, *zip(*[(root, *w) for w in WORLDS], strict=True)))
    pairs = zip(WORLDS, roots, strict=True)
    return {(signal, seed): Lake(path, durable=False) for (signal, seed, _), path in pairs}


def _data(lake: Lake, horizon: int) -> Dataset:
    dataset = load_dataset(lake, None, LABEL, horizon)
    assert dataset.frame["underlying"].n_unique() == len(UNDERLYINGS)
    assert dataset.frame.height > 0.9 * 752 * len(UNDERLYINGS)  # nearly every session
    return dataset


def _describe(overall: dict[str, float]) -> str:
    keys = ("n", "ic", "ic_tstat", "ic_demeaned", "ic_demeaned_tstat", "sharpe_gross",
            "sharpe_gross_tstat", "sharpe_net", "sharpe_net_tstat")  # fmt: skip
    return ", ".join(f"{k}={overall[k]:.3f}" for k in keys)


def _indistinguishable_from_zero(results: dict[int, dict[str, float]]) -> None:
    """No edge on any seed: each seed's IC and gross Sharpe (two checks per seed, one
    family) inside the family's 1% band; the net Sharpe not significantly positive."""
    limit = no_edge_t(2 * len(results))
    described = "; ".join(f"seed {seed}: {_describe(o)}" for seed, o in results.items())
    for overall in results.values():
        assert overall["ic_is_cross_section"] == 1.0, described
        assert abs(overall["ic_tstat"]) < limit, described
        assert abs(overall["sharpe_gross_tstat"]) < limit, described
        assert overall["sharpe_net_tstat"] < limit, described


@pytest.mark.parametrize("horizon", [5, 1])
def test_no_signal_gives_no_edge(worlds: dict[tuple[str, int], Lake], horizon: int) -> None:
    data = {seed: _data(worlds["none", seed], horizon) for seed in SEEDS}
    results = {seed: run_walk_forward(d, FOLDS) for seed, d in data.items()}
    _indistinguishable_from_zero({seed: r.overall for seed, r in results.items()})
    linear = {seed: run_walk_forward(d, FOLDS, model="linear").overall for seed, d in data.items()}
    _indistinguishable_from_zero(linear)  # the baseline invents nothing either
    for r in results.values():
        assert r.overall["n"] > 0.4 * 752 * len(UNDERLYINGS)  # half the history is OOS


def test_tuning_does_not_invent_an_edge(worlds: dict[tuple[str, int], Lake]) -> None:
    results = {seed: run_walk_forward(_data(worlds["none", seed], 5), FOLDS, trials=10)
               for seed in SEEDS}  # fmt: skip
    _indistinguishable_from_zero({seed: r.overall for seed, r in results.items()})
    for r in results.values():
        assert len({p["num_leaves"] for p in r.fold_params}) > 1  # really tuned per fold


def test_planted_signal_is_found(worlds: dict[tuple[str, int], Lake]) -> None:
    """Found, and measured against the oracle (the label fitted on the generator's own
    mispricing on the same folds): the ceiling on each market."""
    models, oracles = [], []
    for seed in SEEDS:
        data = _data(worlds["planted", seed], 5)
        result = run_walk_forward(data, FOLDS)
        oracle = oracle_metrics(data.frame, load_truth(worlds["planted", seed]), result.folds, 5)
        assert oracle is not None and oracle["n"] == result.overall["n"]
        models.append(result.overall)
        oracles.append(oracle)
    described = "; ".join(
        f"seed {seed}: {_describe(m)}; oracle IC {o['ic']:.3f} (t {o['ic_tstat']:.2f})"
        for seed, m, o in zip(SEEDS, models, oracles, strict=True)
    )
    combined = sum(m["ic_tstat"] for m in models) / math.sqrt(len(SEEDS))
    assert sum(o["ic_tstat"] for o in oracles) / math.sqrt(len(SEEDS)) > ONE_SIDED_1PCT, described
    assert combined > ONE_SIDED_1PCT, described
    assert all(m["ic"] > 0 for m in models), described
    share = efficiency(
        sum(m["ic"] for m in models) / len(SEEDS), sum(o["ic"] for o in oracles) / len(SEEDS)
    )
    assert 0.25 < share < 1.2, f"share {share:.2f}; {described}"  # no more than noise allows
    assert load_truth(worlds["none", SEEDS[0]]) is None  # no signal: nothing planted


def test_the_leaky_variant_inflates_the_no_signal_result(
    worlds: dict[tuple[str, int], Lake],
) -> None:
    data = _data(worlds["none", SEEDS[0]], 5)
    honest = run_walk_forward(data, FOLDS).overall
    leaky = run_walk_forward(data, FOLDS, leak="shuffled_kfold").overall
    described = f"honest: {_describe(honest)}; leaky: {_describe(leaky)}"
    assert leaky["ic_tstat"] > 5, described
    assert leaky["ic"] > honest["ic"] + 0.2, described
    assert leaky["sharpe_net"] > 0 > honest["sharpe_net"], described
