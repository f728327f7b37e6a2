"""The one error hierarchy of volflow.

It lives in ``data_lake`` because every other package may import ``data_lake``
(see DESIGN.md, Layout); nothing here imports anything but the standard library.
Messages say what was wrong, where, and what to do.
"""

from __future__ import annotations


class VolflowError(Exception):
    """Base class: a user-facing error the CLI prints as one line, without a traceback."""


class ConfigError(VolflowError):
    """Settings or arguments are invalid (bad date range, unknown underlying, ...)."""


class LakeError(VolflowError):
    """The lake cannot be read or written (unwritable home, corrupt partition file, ...)."""


class DataQualityError(VolflowError):
    """A whole input is unusable (missing columns, wrong types); row-level problems are
    quarantined instead of raised."""


class SourceError(VolflowError):
    """A market-data source failed for one underlying or file."""


class PricingError(VolflowError):
    """Option pricing or implied-volatility inversion failed."""


class BrokerError(VolflowError):
    """A broker adapter failed."""


class RiskRejected(VolflowError):
    """An order was rejected by a risk check."""
