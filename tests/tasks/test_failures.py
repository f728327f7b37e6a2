"""A user error ends a run Failed with its one line; a bug keeps its traceback."""

from __future__ import annotations

import logging
import sys

import pytest
from prefect import flow, task

from data_lake.errors import ConfigError, SourceError
from tasks.failures import fails_cleanly, one_line
from tasks.run_logging import UserErrorTracebacks, is_user_error


def record_with(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, "failed", (), info)


def test_the_filter_drops_the_traceback_of_a_user_error_and_keeps_the_line() -> None:
    record = record_with(SourceError("eod.csv: missing column(s) strike"))
    assert UserErrorTracebacks().filter(record) is True
    assert record.exc_info is None and record.getMessage() == "failed"
    formatted = logging.Formatter().format(record)
    assert "Traceback" not in formatted


def test_the_filter_keeps_the_traceback_of_a_bug() -> None:
    record = record_with(ZeroDivisionError("division by zero"))
    UserErrorTracebacks().filter(record)
    assert "Traceback" in logging.Formatter().format(record)


def test_an_error_raised_while_handling_a_user_error_counts_as_one() -> None:
    outer = RuntimeError("wrapped")
    outer.__cause__ = ConfigError("bad date")
    assert is_user_error(outer)
    assert not is_user_error(ValueError("plain"))


def test_one_line_collapses_whitespace() -> None:
    assert one_line(ConfigError("a\n  b\tc ")) == "a b c"
    assert one_line(ConfigError("")) == "ConfigError"


@task(retries=0)
def failing_task(kind: str) -> int:
    if kind == "user":
        raise SourceError("eod.csv: missing column(s) strike")
    return 1 // 0


@flow(name="failures-test", validate_parameters=True)
@fails_cleanly
def failing_flow(kind: str, repeat: int = 1) -> int:
    """The parameters keep their annotations through the wrapper (validated by Prefect)."""
    return int(failing_task(kind)) * repeat


@pytest.mark.integration
def test_a_user_error_ends_the_run_failed_with_its_line_and_no_traceback(
    prefect_server: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    state = failing_flow("user", return_state=True)
    assert state.is_failed()
    assert state.message == "eod.csv: missing column(s) strike"
    with pytest.raises(SourceError, match="missing column"):  # the same error, in process
        failing_flow("user")
    task_records = [r for r in caplog.records if r.name == "prefect.task_runs"]
    assert task_records and all(r.exc_info is None for r in task_records)
    assert "Traceback" not in caplog.text


@pytest.mark.integration
def test_a_bug_keeps_its_traceback_and_prefects_message(
    prefect_server: None, caplog: pytest.LogCaptureFixture
) -> None:
    state = failing_flow("bug", return_state=True)
    assert state.is_failed()
    assert state.message is not None and "ZeroDivisionError" in (state.message or "")
    assert "Traceback" in caplog.text


@pytest.mark.integration
def test_flow_parameters_are_still_validated_through_the_wrapper(prefect_server: None) -> None:
    state = failing_flow("user", repeat="many", return_state=True)  # type: ignore[arg-type]
    assert state.is_failed() and "Validation of flow parameters failed" in (state.message or "")
