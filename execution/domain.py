"""The money path's domain records: contracts, ids, order requests and reports, fills,
positions. Frozen, typed, and free of any broker library's types (adapters translate
at the boundary).

Ids are value objects, not strings: a :class:`ClientOrderId` (ours, derived before
submission and written to the store first) can never be passed where a
:class:`BrokerOrderId` (the venue's) is expected. Every report-like record carries
``ts_event`` (when it happened, at the venue where known) and ``ts_init`` (when
volflow learned it), both timezone-aware UTC.

Quantities are whole contracts (or combo units); prices are per share of the
underlying, as quoted (multiply by the contract multiplier for dollars). A combo's
limit price is the net price per unit of the combo: positive a debit (we pay),
negative a credit (we receive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from data_lake.errors import ConfigError

_CONTRACT_ID = re.compile(
    r"^(?P<root>[A-Z][A-Z0-9.]{0,5})(?P<ymd>\d{6})(?P<right>[CP])(?P<k>\d{8})$"
)
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def _utc(ts: datetime, name: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ConfigError(f"{name} must be a timezone-aware UTC time, not {ts!r}")


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


class ExerciseStyle(StrEnum):
    AMERICAN = "american"
    EUROPEAN = "european"


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"


class OrderStatus(StrEnum):
    """An order's life, after NautilusTrader's: ``INITIALIZED`` (written to the store,
    not sent), ``SUBMITTED`` (sent, no answer yet: *in flight*, which is also where a
    timeout, a 5xx or a disconnect leaves it until it is looked up), ``ACCEPTED``,
    ``PENDING_CANCEL``, ``PARTIALLY_FILLED``, and the terminal ``FILLED``, ``CANCELED``,
    ``REJECTED``, ``EXPIRED`` (``DENIED``: refused before sending, by the risk engine)."""

    INITIALIZED = "INITIALIZED"
    DENIED = "DENIED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    PENDING_CANCEL = "PENDING_CANCEL"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_in_flight(self) -> bool:
        """Sent, and the venue's answer about it is not known yet (look it up; never
        send it again)."""
        return self in (OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL)


TERMINAL = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    }
)


@dataclass(frozen=True, order=True)
class ClientOrderId:
    """Our id of an order, derived deterministically before it is sent
    (:func:`execution.ids.client_order_id`); travels to the broker as Alpaca's
    ``client_order_id`` or IB's ``orderRef``."""

    value: str

    def __post_init__(self) -> None:
        if not _ID.match(self.value):
            raise ConfigError(
                f"invalid client order id {self.value!r}: 1-64 letters, digits or . _ : -"
            )

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class BrokerOrderId:
    """The venue's id of an order (IB's permId, Alpaca's order UUID)."""

    value: str

    def __post_init__(self) -> None:
        if not self.value:
            raise ConfigError("a broker order id cannot be empty")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class OptionContract:
    """A listed option; ``contract_id`` is the lake's OCC/OSI symbol without root
    padding (``SPY240119C00450000``), ``osi`` the padded 21-character OSI symbol."""

    underlying: str
    expiry: date
    strike: float
    right: Right
    multiplier: float = 100.0
    exercise_style: ExerciseStyle = ExerciseStyle.AMERICAN
    root: str = ""  # the option root where it differs from the underlying (SPXW)

    def __post_init__(self) -> None:
        if not (self.strike > 0 and self.strike < 100_000):
            raise ConfigError(f"invalid strike {self.strike!r} for {self.underlying}")
        if round(self.strike * 1000) != round(self.strike * 1000, 6):
            raise ConfigError(f"strike {self.strike!r} has more than 3 decimals")
        if not self.multiplier > 0:
            raise ConfigError(f"invalid multiplier {self.multiplier!r}")
        if len(self.root or self.underlying) > 6:
            raise ConfigError(f"option root {self.root or self.underlying!r} is over 6 letters")

    @property
    def contract_id(self) -> str:
        root = self.root or self.underlying
        return f"{root}{self.expiry:%y%m%d}{self.right.value}{round(self.strike * 1000):08d}"

    @property
    def osi(self) -> str:
        root = self.root or self.underlying
        return f"{root:<6}{self.contract_id[len(root) :]}"

    @classmethod
    def from_contract_id(
        cls,
        contract_id: str,
        underlying: str | None = None,
        *,
        multiplier: float = 100.0,
        exercise_style: ExerciseStyle = ExerciseStyle.AMERICAN,
    ) -> OptionContract:
        """Parse a lake contract id (or a padded OSI symbol)."""
        text = contract_id.replace(" ", "")
        match = _CONTRACT_ID.match(text)
        if not match:
            raise ConfigError(f"not an OCC/OSI option symbol: {contract_id!r}")
        ymd = match["ymd"]
        expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
        root = match["root"]
        under = underlying or root
        return cls(
            underlying=under,
            expiry=expiry,
            strike=int(match["k"]) / 1000,
            right=Right(match["right"]),
            multiplier=multiplier,
            exercise_style=exercise_style,
            root="" if root == under else root,
        )


@dataclass(frozen=True)
class OrderLeg:
    """One leg of an order: ``ratio`` contracts of ``contract`` per unit of the order."""

    contract: OptionContract
    side: OrderSide
    ratio: int = 1

    def __post_init__(self) -> None:
        if self.ratio < 1:
            raise ConfigError(f"a leg's ratio must be at least 1, not {self.ratio}")


@dataclass(frozen=True)
class OrderRequest:
    """What the OMS asks a broker to do. One leg: a plain option order (``side`` is the
    leg's); several: a combo (the venue's multi-leg order), bought or sold as a unit."""

    client_order_id: ClientOrderId
    legs: tuple[OrderLeg, ...]
    quantity: int
    order_type: OrderType
    limit_price: float | None
    time_in_force: TimeInForce
    ts_init: datetime
    structure: str = ""  # e.g. "iron_butterfly", "vertical", "straddle"
    underlying: str = ""

    def __post_init__(self) -> None:
        _utc(self.ts_init, "ts_init")
        if not self.legs:
            raise ConfigError(f"order {self.client_order_id} has no legs")
        if self.quantity < 1:
            raise ConfigError(f"order {self.client_order_id}: quantity must be >= 1")
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ConfigError(f"limit order {self.client_order_id} has no limit price")
        if self.order_type is OrderType.MARKET and self.limit_price is not None:
            raise ConfigError(f"market order {self.client_order_id} has a limit price")
        underlyings = {leg.contract.underlying for leg in self.legs}
        if len(underlyings) > 1:
            raise ConfigError(f"order {self.client_order_id} mixes underlyings {underlyings}")
        if self.underlying and underlyings != {self.underlying}:
            raise ConfigError(f"order {self.client_order_id}: legs are not on {self.underlying}")

    @property
    def is_combo(self) -> bool:
        return len(self.legs) > 1


@dataclass(frozen=True)
class OrderReport:
    """What a broker says about one order (a submit's answer, a lookup, a stream event)."""

    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId | None
    status: OrderStatus
    filled_quantity: int
    avg_fill_price: float | None
    ts_event: datetime
    ts_init: datetime
    reason: str = ""  # a rejection's or cancellation's reason, as the venue gave it

    def __post_init__(self) -> None:
        _utc(self.ts_event, "ts_event")
        _utc(self.ts_init, "ts_init")
        if self.filled_quantity < 0:
            raise ConfigError(f"report for {self.client_order_id}: negative filled quantity")


@dataclass(frozen=True)
class Fill:
    """One execution of one leg (``fill_id`` is the venue's execution id: fills are
    applied once each, whatever arrives twice)."""

    fill_id: str
    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId | None
    contract: OptionContract
    side: OrderSide
    quantity: int  # contracts of this leg
    price: float
    commission: float
    ts_event: datetime
    ts_init: datetime

    def __post_init__(self) -> None:
        _utc(self.ts_event, "ts_event")
        _utc(self.ts_init, "ts_init")
        if not self.fill_id:
            raise ConfigError("a fill needs the venue's execution id")
        if self.quantity < 1:
            raise ConfigError(f"fill {self.fill_id}: quantity must be >= 1")
        if not self.price >= 0:
            raise ConfigError(f"fill {self.fill_id}: invalid price {self.price!r}")


@dataclass(frozen=True)
class Position:
    """A signed holding (positive long, negative short) in contracts, with its average
    open price per share."""

    contract: OptionContract
    quantity: int
    avg_price: float
    ts_event: datetime
    ts_init: datetime

    def __post_init__(self) -> None:
        _utc(self.ts_event, "ts_event")
        _utc(self.ts_init, "ts_init")
