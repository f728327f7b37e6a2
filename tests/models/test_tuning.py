"""Nested Optuna tuning: seeded, pruned, inside the training window, shareable by
several worker processes through a journal file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import polars as pl

from models.tuning import tune
from models.walkforward import run_walk_forward
from tests.models.test_walkforward import dataset

REPO = Path(__file__).resolve().parents[2]


def _rows(n: int = 600) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    data = dataset(n, signal=0.5)
    return data.features, data.frame["y"].to_numpy(), np.arange(0, 400), np.arange(410, n)


def test_tuning_is_seeded_and_finds_the_signal() -> None:
    features, y, fit, validation = _rows()
    first = tune(features, y, fit, validation, trials=6, seed=3)
    again = tune(features, y, fit, validation, trials=6, seed=3)
    assert first.params == again.params and first.value == again.value
    assert first.value > 0.2  # validation rank IC of the best trial
    assert first.trials + first.pruned == 6 and first.params["rounds"] >= 25


def test_walk_forward_tunes_each_fold_on_its_own_training_rows() -> None:
    result = run_walk_forward(dataset(900, signal=0.5), 2, trials=4, rounds=50)
    assert len(result.fold_params) == 2
    assert all("learning_rate" in p and p["rounds"] >= 25 for p in result.fold_params)
    assert result.overall["rank_ic"] > 0.2


WORKER = """
import sys
sys.path.insert(0, {repo!r})
import numpy as np
from models.tuning import tune
from tests.models.test_tuning import _rows
features, y, fit, validation = _rows()
tune(features, y, fit, validation, trials=3, seed={seed}, storage={storage!r}, study_name="shared")
"""


def test_two_worker_processes_share_one_study(tmp_path: Path) -> None:
    journal = tmp_path / "optuna" / "journal.log"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER.format(repo=str(REPO), seed=seed, storage=str(journal))]
        )
        for seed in (1, 2)
    ]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    study = optuna.load_study(
        study_name="shared",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))
        ),
    )
    assert len(study.trials) == 6  # three from each worker, one study
