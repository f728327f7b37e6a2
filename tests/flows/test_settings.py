from __future__ import annotations

from pathlib import Path

import pytest

from data_lake.errors import ConfigError
from flows.settings import load_settings


def test_defaults_put_all_state_under_home(home: Path) -> None:
    settings = load_settings()
    assert settings.lake.root == home.resolve() / "lake"
    assert settings.prefect_home == home.resolve() / "prefect"
    assert settings.underlyings == ["SPY", "QQQ"]


def test_environment_overrides_yaml_which_overrides_defaults(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "volflow.yaml"
    config.write_text("underlyings: [IWM]\nsynthetic:\n  seed: 5\n  signal: planted\n")
    monkeypatch.setenv("VOLFLOW_CONFIG", str(config))
    monkeypatch.setenv("VOLFLOW_SYNTHETIC__SEED", "9")
    settings = load_settings()
    assert settings.underlyings == ["IWM"]
    assert (settings.synthetic.seed, settings.synthetic.signal) == (9, "planted")


def test_comma_separated_underlyings_from_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOLFLOW_UNDERLYINGS", "spy, aapl")
    assert load_settings().underlyings == ["SPY", "AAPL"]


def test_yaml_can_add_a_synthetic_underlying(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "volflow.yaml"
    config.write_text("synthetic:\n  universe:\n    ABC: {spot: 30, vol: 0.4}\n")
    monkeypatch.setenv("VOLFLOW_CONFIG", str(config))
    profile = load_settings().synthetic.to_config().profile("ABC")
    assert (profile.spot, profile.vol) == (30, 0.4)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("VOLFLOW_SYNTHETIC__SIGNAL", "maybe", "synthetic.signal"),
        ("VOLFLOW_INGEST__CONCURRENCY", "0", "ingest.concurrency"),
        ("VOLFLOW_UNDERLYINGS", "sp y", "invalid underlying symbol"),
    ],
)
def test_bad_settings_are_one_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str, message: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_missing_named_config_file_is_an_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLFLOW_CONFIG", "/nonexistent/volflow.yaml")
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()
