"""How a user error ends a Prefect run: one line, no traceback.

A ``VolflowError`` is a user error (bad file, bad argument, unreadable lake): its
message says what was wrong and what to do, and a traceback only hides that line.
Two pieces make sure no run prints one for it, in the CLI's process and under a
worker alike:

* :func:`fails_cleanly` wraps a flow body: a ``VolflowError`` ends the run
  ``Failed`` with the error's one-line message as the state message (what the UI
  shows), instead of Prefect's "Flow run encountered an exception: ..." and its
  traceback. The exception stays the state's data, so an in-process caller gets
  the same exception object back (the CLI reads a partial run's summary from it).
* ``tasks.run_logging``, configured when this module is imported (every flow module
  imports it), drops the traceback from log records about a ``VolflowError`` (a task
  that fails with one logs it with ``exc_info``); the message line stays. A bug in
  our code (any other exception) keeps its traceback.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from prefect.states import Failed

from data_lake.errors import VolflowError
from tasks.run_logging import configure_run_logging

P = ParamSpec("P")
R = TypeVar("R")


def one_line(exc: BaseException) -> str:
    """The error's message on one line (whitespace runs collapsed)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def fails_cleanly(body: Callable[P, R]) -> Callable[P, R]:
    """Decorate a flow function (under ``@flow``): a user error ends the run Failed with
    its one-line message; anything else propagates with its traceback, as a bug should."""

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            return body(*args, **kwargs)
        except VolflowError as exc:  # Prefect logs the final state, with this message
            return Failed(message=one_line(exc), data=exc)

    # Prefect builds its parameter model from the signature, which would resolve the
    # body's string annotations in this module: hand it them resolved in the body's
    run.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
    # Prefect resolves the returned state: a caller gets R, or the error raised again
    return cast(Callable[P, R], run)


configure_run_logging()
