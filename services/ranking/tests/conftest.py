"""Fixtures shared by the ranking tests: one small trained checkpoint per session, torch on one thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from creatormesh.ranking.data import DEFAULT_DATA_DIR
from creatormesh.ranking.train import TrainConfig, train

#: the first 40 MovieLens users, small models: seconds on one thread
SMALL = TrainConfig(max_users=40, epochs=10, dim=16, batch_size=128, progress=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread: None) -> None:
    """Every test module runs torch on one thread (the kit's fixture)."""


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both models trained on the SMALL slice, shared by every ranking test module."""
    path = tmp_path_factory.mktemp("ranking-small-model")
    train(DEFAULT_DATA_DIR, path, SMALL)
    return path
