"""IV + 5 Greeks throughput: volflow's Polars path against py_vollib, same data, same run.

Run::

    python benchmarks/bench_greeks.py [--rows 1000000,10000000] [--sample 20000]

Data: a seeded chain-like population (spot 100, log-moneyness ~ N(0, 0.15) clipped to
+-0.6, maturities 1 day..2 years, a skewed volatility 0.08..1.2, rates 0..5%, dividend
yields 0..3%, calls and puts), priced with the closed-form BSM formula (numpy and
``scipy.special.ndtr``: independent of the code under test).

Timed, median of 3 after a warm-up (compilation excluded; numba's cache is warm), with
the CPU time of that run per option (summed over threads: other processes on the
machine inflate the wall time, not this):

* volflow: ``features.greeks.implied_vol_and_greeks`` on a Polars frame, end to end
  (column extraction, the parallel kernel on all cores, the seven output columns);
* BASELINE: py_vollib 1.0.1 (numba-accelerated Let's Be Rational) in a Python loop,
  ``implied_volatility`` plus the five ``analytical`` Greeks per option, on a random
  sample of ``--sample`` rows, extrapolated per row.

Accuracy: max |iv - sigma| over identifiable rows (where a few ulps of the strike move
sigma by less than 1e-11), and max |volflow - py_vollib| on the sample. Peak extra
memory of the 10M call is measured in a child process (peak RSS minus RSS before the
call, input frame already built).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import polars as pl
from py_vollib.black_scholes_merton.greeks import analytical
from py_vollib.black_scholes_merton.implied_volatility import implied_volatility
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.greeks import implied_vol_and_greeks


def population(n: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    spot = np.full(n, 100.0)
    log_m = np.clip(rng.normal(0, 0.15, n), -0.6, 0.6)
    strike = spot * np.exp(log_m)
    t = np.exp(rng.uniform(np.log(1 / 365), np.log(2.0), n))
    sigma = np.clip(0.22 - 0.35 * log_m + rng.normal(0, 0.05, n), 0.08, 1.2)
    r = rng.uniform(0, 0.05, n)
    q = rng.uniform(0, 0.03, n)
    call = rng.random(n) < 0.5
    sd = sigma * np.sqrt(t)
    d1 = (np.log(spot / strike) + (r - q + 0.5 * sigma**2) * t) / sd
    d2 = d1 - sd
    fwd_disc, k_disc = spot * np.exp(-q * t), strike * np.exp(-r * t)
    price = np.where(
        call, fwd_disc * ndtr(d1) - k_disc * ndtr(d2), k_disc * ndtr(-d2) - fwd_disc * ndtr(-d1)
    )
    return pl.DataFrame(
        {
            "price": price, "spot": spot, "strike": strike, "t_years": t, "rate": r,
            "div_yield": q, "right": np.where(call, "C", "P"), "sigma": sigma,
        }
    )  # fmt: skip


def median_seconds(fn, repeats: int = 3) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall, CPU) seconds of the run with the median wall time. CPU time is summed over
    the process's threads: about threads x wall on an idle machine, and unaffected by
    other processes taking cores (this machine is shared), which inflate only wall."""
    fn()
    runs = []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - start, time.process_time() - cpu_start))
    runs.sort()
    return runs[len(runs) // 2]


def identifiable_error(result: pl.DataFrame) -> float:
    noise = 16 * np.finfo(float).eps * result["strike"] / (result["vega"] * 100)
    ok = result.filter((result["solver_status"] == "ok") & (noise < 1e-11))
    return float((ok["iv"] - ok["sigma"]).abs().max() or 0.0)


def py_vollib_loop(sample: pl.DataFrame) -> tuple[float, list[float]]:
    rows = sample.select("price", "spot", "strike", "t_years", "rate", "div_yield", "right")
    ivs = []
    start = time.perf_counter()
    for price, s, k, t, r, q, right in rows.iter_rows():
        flag = right.lower()
        try:
            iv = implied_volatility(price, s, k, t, r, q, flag)
        except Exception:  # py_vollib raises below intrinsic / above maximum
            iv = float("nan")
        ivs.append(iv)
        if np.isfinite(iv) and iv > 0:
            for greek in (analytical.delta, analytical.gamma, analytical.vega,
                          analytical.theta, analytical.rho):  # fmt: skip
                greek(flag, s, k, t, r, iv, q)
    return time.perf_counter() - start, ivs


def child_peak_memory(n: int) -> dict[str, float]:
    """One call on n rows in a fresh process: its peak RSS above the RSS before it.
    The input frame is built first; the kernel's peak (VmHWM) is reset just before the
    call (``/proc/self/clear_refs``), so building the input does not count."""
    code = (
        "import sys, json; sys.path.insert(0, 'benchmarks'); sys.path.insert(0, '.');"
        "from bench_greeks import population; from features.greeks import implied_vol_and_greeks;"
        f"frame = population({n}); implied_vol_and_greeks(frame.head(1000));"
        "status = lambda key: int([l for l in open('/proc/self/status') if l.startswith(key)]"
        "[0].split()[1]) / 1024;"
        "open('/proc/self/clear_refs', 'w').write('5');"
        "base = status('VmRSS:'); result = implied_vol_and_greeks(frame);"
        "print(json.dumps({'base_mib': base, 'peak_mib': status('VmHWM:')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]

    print(f"bench_greeks: numba {numba.__version__}, {numba.get_num_threads()} threads, "
          f"polars {pl.__version__}\n")  # fmt: skip
    sample = population(args.sample, seed=11)
    py_vollib_loop(sample.head(200))  # warm-up: py_vollib's numba functions compile or load
    loop_seconds, reference = py_vollib_loop(sample)
    loop_rate = args.sample / loop_seconds
    ours_sample = implied_vol_and_greeks(sample)
    noise = 16 * np.finfo(float).eps * pl.col("strike") / (pl.col("vega") * 100)
    agree = ours_sample.with_columns(pl.Series("ref", reference)).filter(
        (pl.col("solver_status") == "ok")
        & pl.col("ref").is_finite()
        & (pl.col("ref") > 0)
        & (noise < 1e-11)
    )
    worst_vs_ref = float((agree["iv"] - agree["ref"]).abs().max() or 0.0)
    print(f"{'rows':>11} {'volflow s':>10} {'volflow opt/s':>14} {'CPU ns/opt':>11} "
          f"{'py_vollib opt/s':>16} {'ratio':>7} {'max|iv-sigma|':>14} "
          f"{'ok share':>9}")  # fmt: skip
    for n in sizes:
        frame = population(n)
        seconds, cpu_seconds = median_seconds(lambda f=frame: implied_vol_and_greeks(f))
        result = implied_vol_and_greeks(frame)
        ok_share = float((result["solver_status"] == "ok").mean() or 0.0)
        rate = n / seconds
        print(f"{n:11,} {seconds:10.3f} {rate:14,.0f} {cpu_seconds / n * 1e9:11.0f} "
              f"{loop_rate:16,.0f} {rate / loop_rate:6.0f}x "
              f"{identifiable_error(result):14.2e} {ok_share:9.4f}")  # fmt: skip
        del frame, result
    print(f"\npy_vollib loop: {args.sample:,} options in {loop_seconds:.1f} s (IV + 5 analytical "
          "Greeks each), extrapolated per row")  # fmt: skip
    print(f"max |volflow iv - py_vollib iv| on that sample's identifiable rows: {worst_vs_ref:.2e}")
    memory = child_peak_memory(max(sizes))
    extra = memory["peak_mib"] - memory["base_mib"]
    print(
        f"peak extra memory of one call on {max(sizes):,} rows: {extra:,.0f} MiB "
        f"(process {memory['base_mib']:,.0f} MiB before, {memory['peak_mib']:,.0f} peak)"
    )


if __name__ == "__main__":
    main()
