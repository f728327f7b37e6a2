"""Logging inside Prefect runs: library logs at INFO, no tracebacks for user errors.

Prefect routes the loggers named in ``PREFECT_LOGGING_EXTRA_LOGGERS`` (the CLI and
the deployments' job variables name our packages) into the run's logs, the UI's log
view, but leaves their level to the root's (WARNING): :func:`configure_run_logging`
sets our packages to INFO where nobody set a level. It also puts
:class:`UserErrorTracebacks` on Prefect's run loggers: a record about a
``VolflowError`` keeps its message and loses its traceback.
"""

from __future__ import annotations

import logging

from data_lake.errors import VolflowError

# the loggers Prefect's engines log run failures to (records are filtered where made)
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine",
               "prefect.task_engine", "prefect.engine")  # fmt: skip
LIBRARY_LOGGERS = ("data_lake", "features", "models", "execution", "backtest")


def is_user_error(exc: BaseException | None) -> bool:
    """A VolflowError, or an exception raised while handling one (its cause chain)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, VolflowError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class UserErrorTracebacks(logging.Filter):
    """Keep the record, drop its traceback, when the exception is a user error."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        if info and info is not True and is_user_error(info[1]):
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = UserErrorTracebacks()


def configure_run_logging() -> None:
    """Install the filter on Prefect's run loggers, our packages at INFO (idempotent)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
