"""In-process progress reporting: tasks report finished partitions, the CLI draws bars.

Flow parameters must be serializable, so a progress callback cannot be one; the
CLI registers a listener here for the duration of a run in its own process.
Listeners must be thread-safe (tasks run in worker threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

Listener = Callable[[str, date, int], None]  # (underlying, day, rows written)
_lock = threading.Lock()
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def report(underlying: str, day: date, rows: int) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(underlying, day, rows)
