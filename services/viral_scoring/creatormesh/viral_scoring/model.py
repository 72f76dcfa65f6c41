"""The ViralScore models (torch).

Full model: one encoder per modality turns its features into tokens; a self-attention layer mixes the tokens of
the modalities that are present (missing ones are masked); five learned subscore queries cross-attend to them;
an MLP head gives each query's subscore in [0, 1]; V = sigmoid(alpha*E + beta*H + gamma*R + delta*S +
epsilon*T + bias) with alpha..epsilon learned and kept positive (softplus), so a higher subscore never lowers V.

Light model: an MLP over the cheap features only (text statistics, behaviour, time/trend, presence) with the
same head; it needs no sentence embedding, which is most of the cost of scoring text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional

from creatormesh.viral_scoring.features import FeatureBatch

N_SUB = 5
TOKEN_SOURCES = ("embedding", "stats", "visual", "audio", "behavioural", "temporal")
TOKEN_MODALITY = (0, 0, 1, 2, 3, 4)  # which modality mask column gates each token


@dataclass(frozen=True)
class ModelConfig:
    embedding_dim: int
    stats_dim: int
    visual_dim: int
    audio_dim: int
    behavioural_dim: int
    temporal_dim: int
    dim: int = 64
    heads: int = 4
    dropout: float = 0.1
    light_hidden: int = 64

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    def input_dims(self) -> tuple[int, ...]:
        return (
            self.embedding_dim,
            self.stats_dim,
            self.visual_dim,
            self.audio_dim,
            self.behavioural_dim,
            self.temporal_dim,
        )


def tensors(batch: FeatureBatch) -> dict[str, Tensor]:
    out = {
        name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in zip(TOKEN_SOURCES, batch.arrays(), strict=False)
    }
    out["mask"] = torch.from_numpy(np.ascontiguousarray(batch.mask))
    return out


class ViralHead(nn.Module):
    """Subscore logits -> (V, V's logit, subscores) with positive learned coefficients."""

    def __init__(self) -> None:
        super().__init__()
        self.raw_coef = nn.Parameter(torch.full((N_SUB,), 0.5413))  # softplus -> 1.0
        self.bias = nn.Parameter(torch.tensor(-2.5))

    def coefficients(self) -> Tensor:
        coef: Tensor = functional.softplus(self.raw_coef)
        return coef

    def forward(self, logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        sub = torch.sigmoid(logits)
        z = sub @ self.coefficients() + self.bias
        return torch.sigmoid(z), z, sub


class MixBlock(nn.Module):
    """Pre-norm self-attention over the modality tokens + feed-forward (our own, so int8 Linear layers work)."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d, d))

    def forward(self, x: Tensor, padding: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=padding, need_weights=False)[0]
        out: Tensor = x + self.ff(self.norm2(x))
        return out


class ViralModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        dims = config.input_dims()
        self.encoders = nn.ModuleList(
            [nn.Sequential(nn.Dropout(config.dropout), nn.Linear(dims[0], d))]  # the sentence embedding: linear
            + [nn.Sequential(nn.Linear(n, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, d)) for n in dims[1:]]
        )
        self.source_embedding = nn.Parameter(torch.randn(len(TOKEN_SOURCES) + 1, d) * 0.02)
        self.prior = nn.Parameter(torch.zeros(1, 1, d))  # always present: scoring an item with nothing still works
        self.mix = MixBlock(d, config.heads, config.dropout)
        self.queries = nn.Parameter(torch.randn(N_SUB, d) * 0.02)
        self.cross = nn.MultiheadAttention(d, config.heads, dropout=config.dropout, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, 1))
        self.direct = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(sum(dims), N_SUB))  # a linear path
        self.head = ViralHead()

    def forward(self, x: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        mask = x["mask"]
        gate = mask.to(x["stats"].dtype)
        flat = torch.cat(
            [x[name] * gate[:, m : m + 1] for name, m in zip(TOKEN_SOURCES, TOKEN_MODALITY, strict=True)], 1
        )
        tokens = [enc(x[name]) for enc, name in zip(self.encoders, TOKEN_SOURCES, strict=True)]
        n = mask.shape[0]
        seq = torch.cat([self.prior.expand(n, 1, -1), torch.stack(tokens, dim=1)], dim=1) + self.source_embedding
        present = torch.cat([torch.ones(n, 1, dtype=torch.bool), mask[:, list(TOKEN_MODALITY)]], dim=1)
        hidden = self.mix(seq, ~present)
        q = self.queries.unsqueeze(0).expand(n, -1, -1)
        attended, _ = self.cross(q, hidden, hidden, key_padding_mask=~present, need_weights=False)
        logits = self.mlp(self.norm(attended + q)).squeeze(-1) + self.direct(flat)
        out: tuple[Tensor, Tensor, Tensor] = self.head(logits)
        return out


class LightModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        n = config.stats_dim + config.behavioural_dim + config.temporal_dim + 5
        h = config.light_hidden
        self.mlp = nn.Sequential(nn.Linear(n, h), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(h, N_SUB))
        self.head = ViralHead()

    def forward(self, x: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        mask = x["mask"]
        m = mask.to(x["stats"].dtype)
        inputs = torch.cat([x["stats"] * m[:, :1], x["behavioural"] * m[:, 3:4], x["temporal"] * m[:, 4:5], m], dim=1)
        out: tuple[Tensor, Tensor, Tensor] = self.head(self.mlp(inputs))
        return out


def predict(model: nn.Module, batch: FeatureBatch) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(V, subscores) for a whole batch, eval mode."""
    model.eval()
    with torch.inference_mode():
        v, _, sub = model(tensors(batch))
    return v.numpy(), sub.numpy()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def quantize(model: nn.Module) -> nn.Module:
    """int8 dynamic quantisation of every Linear (weights int8, activations quantised on the fly), CPU only."""
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q: nn.Module = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8
        )
    return q
