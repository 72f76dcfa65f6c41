"""The models: V is sigmoid of the learned positive combination of the subscores; missing modalities are masked."""

from __future__ import annotations

import numpy as np
import torch

from creatormesh.viral_scoring.features import FeatureBatch
from creatormesh.viral_scoring.model import LightModel, ModelConfig, ViralModel, predict, quantize, tensors

CONFIG = ModelConfig(embedding_dim=8, stats_dim=5, visual_dim=4, audio_dim=3, behavioural_dim=6, temporal_dim=2, dim=16)


def batch(n: int, seed: int = 0, mask: np.ndarray | None = None) -> FeatureBatch:
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(n, d)).astype(np.float32) for d in CONFIG.input_dims()]
    m = rng.random((n, 5)) < 0.6 if mask is None else mask
    return FeatureBatch(*arrays, m.astype(np.bool_))


def test_v_is_sigmoid_of_the_coefficients_times_subscores() -> None:
    torch.manual_seed(0)
    for model in (ViralModel(CONFIG), LightModel(CONFIG)):
        with torch.no_grad():
            model.head.raw_coef.copy_(torch.tensor([0.3, -1.0, 2.0, 0.0, 1.5]))
        v, sub = predict(model, batch(32))
        coef = model.head.coefficients().detach().numpy()
        assert (coef > 0).all()
        expected = 1 / (1 + np.exp(-(sub @ coef + float(model.head.bias.detach()))))
        np.testing.assert_allclose(v, expected, rtol=1e-5, atol=1e-6)
        assert ((sub >= 0) & (sub <= 1)).all() and ((v > 0) & (v < 1)).all()


def test_masked_modalities_do_not_change_the_score() -> None:
    torch.manual_seed(0)
    model = ViralModel(CONFIG).eval()
    mask = np.array([[True, False, False, True, True]] * 4)
    a = batch(4, seed=1, mask=mask)
    b = batch(4, seed=2, mask=mask)
    b = FeatureBatch(a.embedding, a.stats, b.visual * 100, b.audio * 100, a.behavioural, a.temporal, mask)
    np.testing.assert_allclose(predict(model, a)[0], predict(model, b)[0], rtol=1e-5)
    shown = FeatureBatch(*a.arrays()[:-1], np.ones_like(mask))  # type: ignore[arg-type]
    assert not np.allclose(predict(model, a)[0], predict(model, shown)[0])


def test_an_item_with_nothing_still_scores() -> None:
    model = ViralModel(CONFIG).eval()
    v, sub = predict(model, batch(3, mask=np.zeros((3, 5), dtype=bool)))
    assert np.isfinite(v).all() and np.isfinite(sub).all()


def test_int8_model_tracks_the_full_model() -> None:
    torch.manual_seed(0)
    model = ViralModel(CONFIG).eval()
    q = quantize(model)
    x = batch(64)
    v, _ = predict(model, x)
    vq, _ = predict(q, x)
    assert np.abs(v - vq).max() < 0.05
    assert any("quantized" in type(m).__module__ for m in q.modules())
    with torch.inference_mode():
        assert model(tensors(x))[0].shape == (64,)
