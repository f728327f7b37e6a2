"""``volflow demo``: the whole embedded pipeline on the synthetic market.

Ingest a small synthetic market through the ingest-chains flow, build its
features through the build-features flow (IV/Greeks per contract, surface
features, labels), train a small walk-forward study (the first champion), run the
hourly-signal flow on the next session (the champion is refused by the approval
gate, then the rule baseline trades on the paper broker), then print the lake
summary and SPY's feature history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl
from rich.console import Console

from data_lake.calendar import EXCHANGE_TZ, exchange_calendar
from data_lake.catalog import query
from data_lake.status import lake_status
from flows.build_features import FeatureParams, build_features
from flows.hourly_signal import SignalParams, hourly_signal
from flows.ingest_chains import IngestParams, ingest_chains
from flows.settings import Settings
from flows.train_model import TrainParams, train_model

DEMO_UNDERLYINGS = ["SPY", "QQQ"]
DEMO_START = date(2024, 1, 2)
DEMO_END = date(2024, 3, 28)
DEMO_DIRT_RATE = 0.0005
DEMO_HORIZON = 1  # label horizon of the demo's model (three months of history)

ATM_30D_SQL = """
WITH q AS (
    SELECT underlying, date, expiry, strike, "right", bid, ask, underlying_price,
           abs(strike - underlying_price) AS distance,
           abs(date_diff('day', date, expiry) - 30) AS tenor_gap
    FROM option_quotes
    WHERE underlying = ? AND "right" = 'C'
)
SELECT date, expiry, strike, underlying_price AS spot, bid, ask,
       round((ask - bid) / ((ask + bid) / 2), 4) AS spread_rel
FROM q
QUALIFY row_number() OVER (PARTITION BY date ORDER BY tenor_gap, distance) = 1
ORDER BY date DESC
LIMIT 5
"""

FEATURES_SQL = """
SELECT date, round(atm_iv_30d, 4) AS atm_iv_30d, round(skew_25d_30d, 4) AS skew_25d,
       round(term_slope_30_90, 4) AS term_slope, round(rv_cc_21d, 4) AS rv_21d,
       round(vrp_30d, 4) AS vrp_30d
FROM surface_features
WHERE underlying = ? AND dayofweek(date) = 5
ORDER BY date
"""


def run_demo(
    settings: Settings,
    *,
    start: date | None,
    end: date | None,
    console: Console,
    run_flow: Callable[[Any, Any], dict[str, Any]],
) -> None:
    """Ingest, then summarize; every step goes through the same flows as production."""
    start, end = start or DEMO_START, end or DEMO_END
    console.rule(f"1/5 ingest-chains: synthetic {','.join(DEMO_UNDERLYINGS)} {start}..{end}")
    # a little realistic dirt, so the quality checks and the quarantine have work to show
    params = IngestParams(
        underlyings=DEMO_UNDERLYINGS, start=start, end=end, dirt_rate=DEMO_DIRT_RATE
    )
    summary = run_flow(ingest_chains, params)
    for underlying, s in summary["underlyings"].items():
        console.print(
            f"{underlying}: {s['partitions']} partitions, "
            f"{s['rows'].get('option_quotes', 0):,} option rows, "
            f"{sum(s['quarantined'].values())} quarantined"
        )
    console.rule("2/5 build-features: IV and Greeks, surface features, labels")
    built = run_flow(build_features, FeatureParams(underlyings=DEMO_UNDERLYINGS))
    for underlying, s in built["underlyings"].items():
        rows = s["rows"]
        console.print(
            f"{underlying}: {s['days']} days, {rows.get('option_analytics', 0):,} contracts "
            f"priced, {rows.get('surface_features', 0)} surface rows, "
            f"{rows.get('labels', 0)} labels"
        )
    console.rule("3/5 train-model: walk-forward LightGBM, MLflow, registry")
    trained = run_flow(train_model, TrainParams(trials=3, n_folds=2, horizon=DEMO_HORIZON))
    console.print(
        f"{trained['model_name']} version {trained['model_version']} -> {trained['alias']} "
        f"({trained['reason']}); out of sample: rank IC {trained.get('oos_rank_ic') or 0:.3f}, "
        f"net Sharpe {trained.get('oos_sharpe_net') or 0:.2f} over {trained['n_oos']} rows"
    )
    console.rule("4/5 hourly-signal: approval gate, strategy, risk, OMS, paper broker")
    run_signals(settings, end, console, run_flow)
    console.rule("5/5 lake")
    report = lake_status(settings.lake)
    for table in report["tables"]:
        console.print(
            f"{table['table']:>16}: {table['rows']:>10,} rows in"
            f" {table['partitions']:>5} partitions"
            f"  {table['first_date'] or ''} .. {table['last_date'] or ''}"
        )
    if report["quarantine"]:
        console.print("quarantined rows by failed check (also in volflow lake status):")
        for row in report["quarantine"]:
            console.print(f"  {row['underlying']:>5} {row['reason']:<28} {row['rows']:>5}")
    console.print("\nNearest-to-30-day ATM call of SPY, last 5 sessions (DuckDB over the lake):")
    with pl.Config(tbl_rows=12, tbl_cols=-1, tbl_width_chars=160):
        console.print(
            str(query(settings.lake, ATM_30D_SQL, ["SPY"])), markup=False, highlight=False
        )
        console.print("\nSPY 30-day ATM IV, 25-delta skew, realized vol and VRP, weekly:")
        console.print(
            str(query(settings.lake, FEATURES_SQL, ["SPY"])), markup=False, highlight=False
        )
    console.print(
        f"\nLake: {settings.lake.root}\n"
        'Try: volflow lake status | volflow sql "SELECT underlying, count(*) FROM option_quotes '
        'GROUP BY ALL" | volflow features show SPY --history 10\n'
        "Prefect UI: make prefect-ui (then open http://127.0.0.1:4200)\n"
        "MLflow UI: make mlflow-ui (then open http://127.0.0.1:5000)"
    )


def run_signals(
    settings: Settings, end: date, console: Console,
    run_flow: Callable[[Any, Any], dict[str, Any]],
) -> None:  # fmt: skip
    """The next session at 11:05 New York: the champion's slot (refused unless its
    out-of-sample record passes the gate), then the rule baseline's on paper."""
    session = exchange_calendar().next_session(end)
    at = datetime.combine(session, time(11, 5), EXCHANGE_TZ).astimezone(UTC)
    model = run_flow(hourly_signal, SignalParams(as_of=at, underlyings=DEMO_UNDERLYINGS,
                                                 horizon=DEMO_HORIZON))  # fmt: skip
    console.print(f"champion at {at:%Y-%m-%d %H:%M} UTC: {model.get('reason') or model['status']}")
    rule = run_flow(hourly_signal, SignalParams(
        as_of=at + timedelta(minutes=1), slot=at.replace(minute=0) + timedelta(hours=1),
        underlyings=DEMO_UNDERLYINGS, strategy="rule", refresh_market=False,
    ))  # fmt: skip
    for order in rule.get("orders") or []:
        console.print(
            f"rule baseline: {order['quantity']} x {order['structure']} {order['underlying']} "
            f"at {order['limit']:+.2f} -> {order['status']} ({order['client_order_id']})"
        )
    for underlying, decision in (rule.get("decisions") or {}).items():
        if not any(o["underlying"] == underlying for o in rule.get("orders") or []):
            console.print(f"rule baseline {underlying}: {decision}")
    console.print("orders and positions: volflow orders | volflow positions --as-of "
                  f"{at:%Y-%m-%dT%H:%M}")  # fmt: skip
