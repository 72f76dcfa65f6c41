"""The torch modules and their feature space (untrained weights; no data needed)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from creatormesh.ranking.models import OOV, FeatureSpace, SASRec, SequenceConfig, TwoTower, TwoTowerConfig, left_pad


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)


SPACE = FeatureSpace(
    genres=("comedy", "drama", "sci-fi"),
    tags=("funny", "space"),
    items=("10", "20", "30"),
    users=("u1", "u2"),
    max_log_count=float(np.log1p(100)),
)


def test_feature_space_vectors_and_oov() -> None:
    assert SPACE.item_index("20") == 2 and SPACE.item_index("new") == OOV
    assert SPACE.user_index("u1") == 1 and SPACE.user_index("stranger") == OOV
    assert SPACE.genre_vector(["Sci-Fi", "western"]).tolist() == [0, 0, 1]
    assert SPACE.tag_vector(["#funny", "space", "unknown"]).tolist() == [0.5, 0.5]
    eng = SPACE.engagement(100, 0.8, None)
    assert eng.tolist() == pytest.approx([1.0, 0.8, 0.0, 0.0])
    assert SPACE.engagement(0, 0.5, 0.3).tolist() == pytest.approx([0.0, 0.5, 0.3, 1.0])
    assert FeatureSpace.from_json(SPACE.to_json()) == SPACE


def test_left_pad_keeps_the_newest() -> None:
    assert left_pad([[1, 2, 3], [], [4]], 2).tolist() == [[2, 3], [0, 0], [0, 4]]


def test_two_tower_outputs_unit_vectors_for_known_and_unknown_ids() -> None:
    config = TwoTowerConfig(n_users=3, n_items=4, n_genres=3, n_tags=2, text_dim=8, dim=16)
    model = TwoTower(config).eval()
    with torch.inference_mode():
        items = model.item(
            torch.tensor([1, OOV]),
            torch.tensor([[1.0, 0, 0], [0, 1, 1]]),
            torch.zeros(2, 2),
            torch.randn(2, 8),
            torch.rand(2, 4),
        )
        users = model.user(torch.tensor([1, OOV]), torch.zeros(2, 5), torch.tensor([[0] * 48 + [1, 2], [0] * 50]))
    for vectors in (items, users):
        assert vectors.shape == (2, 16)
        assert torch.isfinite(vectors).all()
        assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)


def test_untrained_hashtag_interests_are_neutral() -> None:
    model = TwoTower(TwoTowerConfig(n_users=3, n_items=4, n_genres=3, n_tags=2, text_dim=8, dim=16)).eval()
    hist = torch.zeros(1, 50, dtype=torch.long)
    with torch.inference_mode():
        plain = model.user(torch.tensor([OOV]), torch.zeros(1, 5), hist)
        tagged = model.user(torch.tensor([OOV]), torch.tensor([[0, 0, 0, 1.0, 0]]), hist)
    assert torch.equal(plain, tagged)


def _sequence_model() -> SASRec:
    return SASRec(SequenceConfig(n_items=6, n_genres=3, dim=16, heads=2, max_len=8, dropout=0.0)).eval()


def test_sasrec_is_causal() -> None:
    model = _sequence_model()
    items = torch.randn(1, 8, 16)
    valid = torch.ones(1, 8, dtype=torch.bool)
    changed = items.clone()
    changed[0, -1] = torch.randn(16)
    with torch.inference_mode():
        a, b = model.encode(items, valid), model.encode(changed, valid)
    assert torch.allclose(a[0, :-1], b[0, :-1], atol=1e-6)  # earlier positions never see later items
    assert not torch.allclose(a[0, -1], b[0, -1])


def test_sasrec_ignores_padding_content() -> None:
    model = _sequence_model()
    items = torch.randn(1, 8, 16)
    valid = torch.tensor([[False] * 3 + [True] * 5])
    noisy = items.clone()
    noisy[0, :3] = torch.randn(3, 16) * 10
    with torch.inference_mode():
        a, b = model.encode(items, valid), model.encode(noisy, valid)
    assert torch.isfinite(a).all()
    assert torch.allclose(a[0, -1], b[0, -1], atol=1e-5)


def test_sasrec_embeds_unknown_ids_by_genre() -> None:
    model = _sequence_model()
    with torch.inference_mode():
        e = model.item_embeddings(torch.tensor([OOV, OOV]), torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    assert e.shape == (2, 16)
    assert not torch.allclose(e[0], e[1])
