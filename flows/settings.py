"""One frozen settings object: defaults < YAML file < ``VOLFLOW_*`` environment.

The YAML file is ``$VOLFLOW_CONFIG`` if set, else ``volflow.yaml`` in the working
directory if present. Nested keys use ``__`` in the environment, e.g.
``VOLFLOW_SYNTHETIC__SEED=3``. Loaded once by the CLI or a flow and passed down.
All state lives under ``home`` (``VOLFLOW_HOME``, default ``.volflow``).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from data_lake.errors import ConfigError
from data_lake.lake import Lake, validate_symbol
from data_lake.source_preference import DEFAULT_SOURCE_PREFERENCE
from data_lake.sources.synthetic import DEFAULT_UNIVERSE, SyntheticConfig, UnderlyingProfile
from execution.risk import RiskLimits
from execution.strategy import StrategySettings


def split_symbols(value: object) -> object:
    """``"spy, qqq"`` (a CLI option, an environment variable) -> ``["SPY", "QQQ"]``."""
    if isinstance(value, str):
        return [s.strip().upper() for s in value.split(",") if s.strip()]
    return value


# underlyings given as a list or as one comma-separated string
SymbolList = Annotated[list[str], BeforeValidator(split_symbols)]


class ProfileSettings(BaseModel):
    """A synthetic underlying added or overridden from the settings file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spot: float = Field(gt=0)
    vol: float = Field(gt=0, lt=3)
    dividend_yield: float = Field(default=0.01, ge=0, lt=0.2)
    skew: float = 0.1
    smile: float = 0.02
    penny: bool = True
    weeklies: int = Field(default=5, ge=0, le=8)
    liquidity: float = Field(default=1.0, gt=0)


class SyntheticSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    seed: int = 7
    signal: Literal["none", "planted"] = "none"
    rate: float = Field(default=0.04, ge=-0.05, le=0.5)
    expiry_months: int = Field(default=12, ge=1, le=36)
    strike_range_sd: tuple[float, float] = (-3.5, 2.5)
    strikes_per_sd: float = Field(default=20.0, ge=2, le=100)
    planted_sd: float = Field(default=0.06, ge=0, le=0.5)
    dirt_rate: float = Field(default=0.0, ge=0, le=0.5)
    # every underlying's variance risk premium; None: each profile's own (0.3); 0: fair
    variance_risk_premium: float | None = Field(default=None, ge=0, le=3)
    universe: dict[str, ProfileSettings] = Field(default_factory=dict)

    def to_config(self, **overrides: object) -> SyntheticConfig:
        universe = dict(DEFAULT_UNIVERSE)
        for name, prof in self.universe.items():
            universe[validate_symbol(name)] = UnderlyingProfile(**prof.model_dump())
        values: dict[str, object] = {
            "seed": self.seed,
            "signal": self.signal,
            "rate": self.rate,
            "expiry_months": self.expiry_months,
            "strike_range_sd": self.strike_range_sd,
            "strikes_per_sd": self.strikes_per_sd,
            "planted_sd": self.planted_sd,
            "dirt_rate": self.dirt_rate,
            "variance_risk_premium": self.variance_risk_premium,
            "universe": universe,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return SyntheticConfig(**values)  # type: ignore[arg-type]


class RateSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    series: str = "PCREDIT8"  # the imported series analytics use (volflow ingest rates)
    fallback: float = Field(default=0.04, ge=-0.05, le=0.5)  # where the series has no value
    # a value dated d is used from d + lag: FRED's daily series are published the next
    # business day (1 is safe for both FRED and LEAN's pre-announced primary credit rate)
    publication_lag_days: int = Field(default=1, ge=0, le=10)


class YahooSettings(BaseModel):
    """Live yfinance polls: which expiries, how fast, how persistent."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_dte: int = Field(default=0, ge=0)
    max_dte: int | None = Field(default=None, ge=0)  # None: every listed expiry
    requests_per_second: float = Field(default=2.0, gt=0, le=50)  # shared by all polls
    max_wait_seconds: float = Field(default=60.0, ge=0)  # longest wait for the limiter
    attempts: int = Field(default=4, ge=1, le=20)  # per request, transient failures only
    backoff_initial_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)


class FeatureSettings(BaseModel):
    """The build-features flow: dividend assumptions and label horizons."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # continuous dividend yield per underlying where the lake has no dividend history
    # (factor files); default: the synthetic profile's yield, else 0
    dividend_yields: dict[str, float] = Field(default_factory=dict)
    horizons: tuple[int, ...] = (1, 5)  # label horizons, in snapshots of one underlying
    # where sources share a snapshot (a CBOE file and a yfinance poll at the close), the
    # features read the first one listed that is present; unlisted sources come last
    source_preference: tuple[str, ...] = DEFAULT_SOURCE_PREFERENCE

    @field_validator("horizons")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("horizons must be positive numbers of snapshots")
        return tuple(sorted(set(value)))


class TrainSettings(BaseModel):
    """The train-model flow: the study, the tracking store, the label."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tracking_uri: str | None = None  # default: sqlite under VOLFLOW_HOME/mlflow
    label: str = "straddle_dh_ret"
    horizon: int = Field(default=5, ge=1)
    n_folds: int = Field(default=5, ge=1, le=50)  # at most: fewer if the data is short
    min_train_periods: int = Field(default=20, ge=1)  # per fold, after purge and embargo
    trials: int = Field(default=20, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    seed: int = 7
    num_threads: int = Field(default=1, ge=1, le=64)
    short_cost: float = Field(default=0.0, ge=0)  # extra round-trip cost of a short position
    optuna_storage: str | None = None  # journal file path or RDB URL (shared tuning)
    # promotion: the paired test of challenger against champion on fresh rows
    promotion_tstat: float = Field(default=1.645, ge=0)  # one-sided; 1.645 is 5%
    min_paired_snapshots: int = Field(default=20, ge=3)


class IngestSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    concurrency: int = Field(default=2, ge=1, le=64)  # underlyings ingested at once
    retries: int = Field(default=2, ge=0, le=10)  # on I/O errors only
    retry_delay_seconds: float = Field(default=2.0, ge=0)


class ApprovalSettings(BaseModel):
    """The absolute gate a champion must pass to trade (see execution/champion.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_sharpe_tstat: float = 2.0  # the version's out-of-sample net Sharpe t statistic
    min_oos_rows: int = Field(default=500, ge=0)


class PaperSettings(BaseModel):
    """The paper broker: IB-style tiered option commissions, its price checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    per_contract: float = Field(default=0.65, ge=0)  # premium >= 0.10
    per_contract_low: float = Field(default=0.50, ge=0)  # 0.05 <= premium < 0.10
    per_contract_penny: float = Field(default=0.25, ge=0)  # premium < 0.05
    minimum_per_order: float = Field(default=1.00, ge=0)
    price_band: float = Field(default=0.5, gt=0)  # limit price at most this far from mid
    path: Path | None = None  # default: VOLFLOW_HOME/paper.sqlite


class AlpacaSettings(BaseModel):
    """Alpaca (alpaca-py): keys from the environment (VOLFLOW_EXECUTION__ALPACA__API_KEY,
    ..._SECRET_KEY), never logged; a paper account unless live trading is enabled."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    api_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    paper: bool = True
    live_trading: bool = False  # needed, with paper: false, to trade a live account
    url_override: str | None = None  # a proxy or a test venue


class IbkrSettings(BaseModel):
    """Interactive Brokers (ib_async) through TWS or IB Gateway."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=7497, ge=1, le=65535)  # TWS paper; 4002 is IB Gateway paper
    client_id: int = Field(default=17, ge=0)
    account: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    live_trading: bool = False  # needed to connect to a live port (7496, 4001)


class ExecutionSettings(BaseModel):
    """The money path: broker, order store, strategy, risk limits, approval gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    broker: Literal["paper", "alpaca", "ibkr"] = "paper"
    store_url: str | None = None  # default: sqlite under VOLFLOW_HOME/orders.sqlite
    deployment: str = "hourly-signal"  # part of every client order id
    strategy: Literal["model", "rule"] = "model"
    underlyings: Annotated[SymbolList, NoDecode] | None = None  # default: settings.underlyings
    capital: float = Field(default=100_000.0, gt=0)
    max_quote_age_minutes: float = Field(default=120.0, gt=0)
    rule_direction: Literal["short", "long"] = "short"  # the rule: sell or buy volatility
    rule_every_sessions: int = Field(default=5, ge=1)
    slot_lease_minutes: float = Field(default=30.0, ge=0)  # a crashed run's slot, taken over
    # ingest the latest snapshot (synthetic market) and build its features before deciding
    refresh_market: bool = True
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    risk: RiskLimits = Field(default_factory=RiskLimits)
    structures: StrategySettings = Field(default_factory=StrategySettings)
    paper: PaperSettings = Field(default_factory=PaperSettings)
    alpaca: AlpacaSettings = Field(default_factory=AlpacaSettings)
    ibkr: IbkrSettings = Field(default_factory=IbkrSettings)


class Settings(BaseSettings):
    """volflow's settings (see the module docstring for precedence)."""

    model_config = SettingsConfigDict(
        env_prefix="VOLFLOW_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    home: Path = Path(".volflow")
    underlyings: Annotated[SymbolList, NoDecode] = Field(default_factory=lambda: ["SPY", "QQQ"])
    default_start: date | None = None
    synthetic: SyntheticSettings = Field(default_factory=SyntheticSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    rates: RateSettings = Field(default_factory=RateSettings)
    yahoo: YahooSettings = Field(default_factory=YahooSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)

    @field_validator("underlyings")
    @classmethod
    def _valid_symbols(cls, value: list[str]) -> list[str]:
        return [validate_symbol(s) for s in value]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = config_path()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @property
    def lake(self) -> Lake:
        return Lake(self.home.resolve() / "lake")

    @property
    def tracking_uri(self) -> str:
        """MLflow's tracking store: the setting, else SQLite under ``home``."""
        if self.train.tracking_uri:
            return self.train.tracking_uri
        return f"sqlite:///{self.home.resolve() / 'mlflow' / 'mlflow.db'}"

    @property
    def order_store_url(self) -> str:
        """The order store: the setting, else SQLite under ``home``."""
        if self.execution.store_url:
            return self.execution.store_url
        return f"sqlite:///{self.home.resolve() / 'orders.sqlite'}"

    @property
    def prefect_home(self) -> Path:
        return self.home.resolve() / "prefect"


def config_path() -> Path | None:
    """The settings file in use, if any; a named file that does not exist is an error."""
    named = os.environ.get("VOLFLOW_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"VOLFLOW_CONFIG names {path}, which is not a file")
        return path
    local = Path("volflow.yaml")
    return local if local.is_file() else None


def load_settings(**overrides: object) -> Settings:
    """Load settings once; validation errors become one clear ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SettingsError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where or '(root)'}: {first['msg']}") from exc
