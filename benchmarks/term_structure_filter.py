"""Can a state-space filter of the ATM term structure see the planted mispricing
better than the features do? A probe, not a feature: the ceiling of the approach.

Run::

    python benchmarks/term_structure_filter.py [--size 4x3] [--seed 101] [--vrp 0]
        [--factors 2,3] [--iterations 60] [--cache .power-markets]

On one planted market of the power study (built under ``--cache`` when missing), per
underlying: a linear Gaussian state-space model of the four log ATM IVs (7/30/60/90
days), optionally with the day's log absolute return as a fifth, noisy observation
of the variance state (``+r``), with ``K`` AR factors (a full transition matrix, free
loadings, diagonal measurement noise), fitted by EM (Shumway and Stoffer 1982) on
the **whole** market and run as a Kalman filter (each day's states from that day's
data and before, given the parameters). It prints the in-sample R-squared of the
generator's ``m_t`` regressed on the filtered states, alone and with every feature of
the pipeline, against the same regression on the four log IVs and their squares and
on the features alone (the baselines, same run). In sample and with parameters
fitted on the future: an upper bound on what such a filter would give a walk-forward
model, not a result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.markets import build, sized
from data_lake.catalog import query
from data_lake.lake import Lake
from models.dataset import FEATURE_COLUMNS

TENORS = ("atm_iv_7d", "atm_iv_30d", "atm_iv_60d", "atm_iv_90d")


def kalman(y: np.ndarray, a: np.ndarray, c: np.ndarray, q: np.ndarray, r: np.ndarray,
           x0: np.ndarray, p0: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """Filtered and predicted means and covariances (missing observations skipped)."""
    n, k = len(y), len(a)
    xf, pf = np.zeros((n, k)), np.zeros((n, k, k))
    xp, pp = np.zeros((n, k)), np.zeros((n, k, k))
    x, p = x0, p0
    for t in range(n):
        if t:
            x, p = a @ x, a @ p @ a.T + q
        xp[t], pp[t] = x, p
        seen = np.isfinite(y[t])
        if seen.any():
            ct = c[seen]
            s = ct @ p @ ct.T + r[np.ix_(seen, seen)]
            gain = p @ ct.T @ np.linalg.inv(s)
            x = x + gain @ (y[t, seen] - ct @ x)
            p = p - gain @ ct @ p
        xf[t], pf[t] = x, p
    return xf, pf, xp, pp


def em(y: np.ndarray, k: int, iterations: int) -> tuple[np.ndarray, ...]:
    """EM estimates (A, C, Q, R, x0, P0) of a K-factor model of centered ``y``."""
    n, dims = y.shape
    filled = np.where(np.isfinite(y), y, 0.0)
    _, sv, vt = np.linalg.svd(filled, full_matrices=False)
    c = vt[:k].T * sv[:k] / np.sqrt(n)  # principal components to start
    phis = np.array([0.98, 0.7, 0.9, 0.5][:k])
    a, q = np.diag(phis), np.diag(1 - phis**2)
    r = np.diag(np.nanvar(y, axis=0) * 0.1)
    x0, p0 = np.zeros(k), np.eye(k)
    for _ in range(iterations):
        xf, pf, xp, pp = kalman(y, a, c, q, r, x0, p0)
        xs, ps = xf.copy(), pf.copy()
        lag = np.zeros((n - 1, k, k))  # E[x_{t+1} x_t']
        for t in range(n - 2, -1, -1):
            j = pf[t] @ a.T @ np.linalg.inv(pp[t + 1])
            xs[t] = xf[t] + j @ (xs[t + 1] - xp[t + 1])
            ps[t] = pf[t] + j @ (ps[t + 1] - pp[t + 1]) @ j.T
            lag[t] = ps[t + 1] @ j.T + np.outer(xs[t + 1], xs[t])
        second = ps + np.einsum("ti,tj->tij", xs, xs)
        s11, s10, s00 = second[1:].sum(0), lag.sum(0), second[:-1].sum(0)
        a = s10 @ np.linalg.inv(s00)
        q = (s11 - a @ s10.T) / (n - 1)
        q = (q + q.T) / 2
        for i in range(dims):
            seen = np.isfinite(y[:, i])
            sxx = second[seen].sum(0)
            c[i] = np.linalg.solve(sxx, (y[seen, i][:, None] * xs[seen]).sum(0))
            fitted = xs[seen] @ c[i]
            spread = np.einsum("j,tjk,k->t", c[i], second[seen], c[i])
            r[i, i] = max(float(np.mean(y[seen, i] ** 2 - 2 * y[seen, i] * fitted + spread)),
                          1e-10)  # fmt: skip
        x0, p0 = xs[0], ps[0]
    return a, c, q, r, x0, p0


def r_squared(x: np.ndarray, target: np.ndarray) -> float:
    keep = np.all(np.isfinite(x), axis=1) & np.isfinite(target)
    design = np.column_stack([x[keep], np.ones(keep.sum())])
    beta, *_ = np.linalg.lstsq(design, target[keep], rcond=None)
    return 1 - float(np.var(target[keep] - design @ beta) / np.var(target[keep]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4x3")
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--vrp", default="0")
    parser.add_argument("--factors", default="2,3")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--cache", type=Path, default=Path(".power-markets"))
    args = parser.parse_args()
    n, years = (int(v) for v in args.size.split("x"))
    vrp = None if args.vrp == "default" else float(args.vrp)
    market = sized(n, years, signal="planted", vrp=vrp, seed=args.seed)
    root, _ = build(args.cache, market)
    lake = Lake(root, durable=False)
    rows = query(lake, "SELECT * FROM surface_features ORDER BY underlying, ts_event").join(
        query(lake, "SELECT underlying, ts_event, mispricing FROM synthetic_truth"),
        on=["underlying", "ts_event"], how="left",
    )  # fmt: skip
    print(f"{market.name}: in-sample R-squared of m_t, per underlying")
    print(
        f"{'':5} {'log IVs+sq':>10} {'features':>8}  filtered states alone / with the "
        "features (factors, +r: with returns)"
    )
    for part in rows.partition_by("underlying", maintain_order=True):
        logs = np.log(part.select(TENORS).to_numpy().astype(float))
        m = part["mispricing"].to_numpy().astype(float)
        spot = part["underlying_price"].to_numpy().astype(float)
        absolute = np.abs(np.diff(np.log(spot), prepend=np.nan))
        move = np.log(absolute * np.sqrt(252) + 1e-3)  # a noisy log-volatility reading
        baseline = r_squared(np.column_stack([logs, logs**2]), m)
        every = part.select(FEATURE_COLUMNS).to_numpy().astype(float)
        features = r_squared(every, m)
        cells = []
        for k in (int(v) for v in args.factors.split(",")):
            for with_returns in (False, True):
                y = np.column_stack([logs, move]) if with_returns else logs
                y = y - np.nanmean(y, axis=0)
                started = time.perf_counter()
                a, c, q, r, x0, p0 = em(y, k, args.iterations)
                states = kalman(y, a, c, q, r, x0, p0)[0]
                both = r_squared(np.column_stack([every, states]), m)
                cells.append(f"{k}{'+r' if with_returns else ''} {r_squared(states, m):.2f} "
                             f"/ {both:.2f} ({time.perf_counter() - started:.0f} s)")  # fmt: skip
        print(f"{part['underlying'][0]:5} {baseline:10.2f} {features:8.2f}  " + ", ".join(cells))


if __name__ == "__main__":
    main()
