"""Fan-out helpers shared by the flows."""

from __future__ import annotations

from typing import Any

from prefect.futures import PrefectFuture
from prefect.logging import get_run_logger

from data_lake.ingest import PartialIngestError, failure_line


def gather_results(
    futures: dict[str, PrefectFuture[dict[str, object]]], summary: dict[str, Any], key: str
) -> dict[str, Any]:
    """Collect each unit's result; a failed unit is reported and does not sink the others."""
    logger = get_run_logger()
    for unit, future in futures.items():
        try:
            result = future.result()
        except Exception as exc:  # one bad underlying or file must not sink the others
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            summary["failed"][unit] = message
            logger.error("failed: %s", failure_line(unit, message))
            continue
        summary[key][unit] = result
        problems = result.get("problems") or []
        if problems:  # written in part: the sessions of unreadable files were left out
            assert isinstance(problems, list)
            message = f"{len(problems)} file(s) left out, the rest written: " + "; ".join(
                str(p) for p in problems
            )
            summary["failed"][unit] = message
            logger.error("%s: %s", unit, message)
    if summary["failed"]:
        raise PartialIngestError(summary)
    return summary
