"""Fixtures shared by the ranking tests: one small trained checkpoint per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Both models trained for a couple of epochs on the first 60 MovieLens users (seconds, one thread)."""
    import torch

    from creatormesh.ranking.data import DEFAULT_DATA_DIR
    from creatormesh.ranking.train import TrainConfig, train

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ranking-model")
    config = TrainConfig(max_users=60, dim=16, two_tower_epochs=2, sequence_epochs=2, progress=False)
    train(DEFAULT_DATA_DIR, out, config)
    yield out
    torch.set_num_threads(previous)
