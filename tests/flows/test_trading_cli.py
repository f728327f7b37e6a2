"""The money path through the real ``volflow`` console script, each command a new
process (a restart): a signal slot traded once, orders and positions read back, the
kill switch held across processes, errors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.flows.test_cli_errors import no_traceback, volflow

pytestmark = pytest.mark.integration

SMALL = {
    "VOLFLOW_SYNTHETIC__EXPIRY_MONTHS": "3",
    "VOLFLOW_SYNTHETIC__STRIKES_PER_SD": "6",
    "VOLFLOW_EXECUTION__RULE_EVERY_SESSIONS": "1",
    "VOLFLOW_EXECUTION__STRATEGY": "rule",
}


@pytest.fixture
def api_url(prefect_server: None) -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def _json(lines: list[str]) -> object:
    return json.loads(lines[-1])


def test_a_slot_trades_once_and_a_halt_holds_across_processes(tmp_path: Path, api_url: str) -> None:
    at = ["--as-of", "2024-03-12T15:05:00+00:00", "--json"]
    code, out, err = volflow(["signal", *at], tmp_path, api_url, **SMALL)
    assert code == 0, err
    first = _json(out)
    assert isinstance(first, dict)
    assert {o["underlying"] for o in first["orders"]} == {"SPY", "QQQ"}
    code, out, err = volflow(["signal", *at], tmp_path, api_url, **SMALL)  # the slot again
    assert code == 0, err
    again = _json(out)
    assert isinstance(again, dict)
    assert again["status"] == "skipped"
    code, out, _ = volflow(["orders", "--json"], tmp_path, **SMALL)
    orders = _json(out)
    assert isinstance(orders, list)
    assert [(o["underlying"], o["status"]) for o in orders] == [
        (o["underlying"], "FILLED") for o in first["orders"]]  # fmt: skip
    code, out, _ = volflow(["positions", "--json", "--as-of", "2024-03-12T16:00:00"], tmp_path,
                           **SMALL)  # fmt: skip
    held = _json(out)
    assert isinstance(held, dict)
    assert held["trading_state"] == "ACTIVE"
    assert len(held["positions"]) == 8  # two iron butterflies
    code, out, err = volflow(["halt", "--reason", "desk review"], tmp_path, **SMALL)
    assert (code, out) == (0, ["trading HALTED: desk review"]), err
    code, out, _ = volflow(["positions", "--json"], tmp_path, **SMALL)
    assert _json(out)["trading_state"] == "HALTED"  # type: ignore[index]
    later = ["--as-of", "2024-03-12T16:05:00+00:00", "--underlyings", "IWM", "--json"]
    code, out, err = volflow(["signal", *later], tmp_path, api_url, **SMALL)
    assert code == 0, err
    halted = _json(out)
    assert isinstance(halted, dict)
    assert halted["orders"] == []
    assert halted["trading_state"] == "HALTED"
    assert halted["decisions"]["IWM"].startswith("rejected: trading_state: trading is HALTED")
    code, out, _ = volflow(["resume", "--reason", "review done"], tmp_path, **SMALL)
    assert out == ["trading ACTIVE: review done"]


def test_trading_errors_are_one_line(tmp_path: Path, api_url: str) -> None:
    code, out, err = volflow(["reconcile", "--accept"], tmp_path, **SMALL)
    assert (code, out, err) == (2, [], [
        "error: --accept needs --reason (it is recorded with the adjustment)"])  # fmt: skip
    code, out, err = volflow(["signal", "--strategy", "coin", "--no-refresh"], tmp_path, **SMALL)
    assert code == 2
    assert err == ["error: strategy: Input should be 'model' or 'rule'"]
    code, out, err = volflow(
        ["signal", "--as-of", "2024-03-16T15:00:00+00:00", "--json"], tmp_path, api_url, **SMALL
    )
    assert code == 0, err
    assert _json(out)["status"] == "closed"  # type: ignore[index]
    assert no_traceback(out, err)


def test_broker_chain_polls_say_what_is_missing_in_one_line(tmp_path: Path, api_url: str) -> None:
    from tests.prefect_processes import free_port

    port = str(free_port())  # nothing listens there: TWS is not running
    code, out, err = volflow(["ingest", "ibkr", "--underlyings", "SPY"], tmp_path, api_url,
                             VOLFLOW_EXECUTION__IBKR__PORT=port)  # fmt: skip
    assert code == 1
    assert err[-1] == (
        f"error: 1 of 1 underlying(s) failed: ibkr SPY: cannot reach TWS/IB Gateway at "
        f"127.0.0.1:{port}: [Errno 111] Connect call failed ('127.0.0.1', {port})"
    ), err
    code, out, err = volflow(["ingest", "alpaca", "--underlyings", "SPY"], tmp_path, api_url)
    assert code == 1
    assert "needs VOLFLOW_EXECUTION__ALPACA__API_KEY" in err[-1]
    assert no_traceback(out, err)
