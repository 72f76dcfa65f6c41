"""The learned models (torch): a two-tower retrieval model and a SASRec-style sequence model, plus the
feature space that turns ids, genres, hashtags and engagement numbers into their inputs.

Index 0 of every id vocabulary is the out-of-vocabulary (OOV) entry: unknown users and items still get
vectors from their content (genres, hashtags, text, engagement) or interests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional

OOV = 0
ENGAGEMENT_FEATURES = 4  # log popularity, quality, engagement rate, engagement rate present


@dataclass(frozen=True)
class FeatureSpace:
    """Vocabularies and constants shared by training and inference."""

    genres: tuple[str, ...]
    tags: tuple[str, ...]
    items: tuple[str, ...]  # item ids with an id embedding (index = position + 1)
    users: tuple[str, ...]  # user ids with an id embedding (index = position + 1)
    max_log_count: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "_genre_index", {g: i for i, g in enumerate(self.genres)})
        object.__setattr__(self, "_tag_index", {t: i for i, t in enumerate(self.tags)})
        object.__setattr__(self, "_item_index", {x: i + 1 for i, x in enumerate(self.items)})
        object.__setattr__(self, "_user_index", {x: i + 1 for i, x in enumerate(self.users)})

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FeatureSpace:
        return cls(
            genres=tuple(raw["genres"]),
            tags=tuple(raw["tags"]),
            items=tuple(raw["items"]),
            users=tuple(raw["users"]),
            max_log_count=float(raw["max_log_count"]),
        )

    def item_index(self, item_id: str) -> int:
        index: int = self.__dict__["_item_index"].get(item_id, OOV)
        return index

    def user_index(self, user_id: str) -> int:
        index: int = self.__dict__["_user_index"].get(user_id, OOV)
        return index

    def genre_vector(self, genres: Iterable[str]) -> NDArray[np.float32]:
        """Multi-hot over the genre vocabulary (unknown genres are ignored)."""
        out = np.zeros(len(self.genres), dtype=np.float32)
        lookup = self.__dict__["_genre_index"]
        for g in genres:
            if (i := lookup.get(g.lower())) is not None:
                out[i] = 1.0
        return out

    def tag_vector(self, tags: Iterable[str]) -> NDArray[np.float32]:
        """Multi-hot over the hashtag vocabulary, scaled to sum 1 (unknown tags are ignored)."""
        out = np.zeros(len(self.tags), dtype=np.float32)
        lookup = self.__dict__["_tag_index"]
        for t in tags:
            if (i := lookup.get(t.lower().lstrip("#"))) is not None:
                out[i] = 1.0
        total = out.sum()
        return out / total if total > 0 else out

    def engagement(self, count: float, quality: float, engagement_rate: float | None) -> NDArray[np.float32]:
        """[log popularity in [0,1], quality in [0,1], engagement rate, 1 if the rate is known]."""
        log_count = math.log1p(max(count, 0.0)) / self.max_log_count if self.max_log_count > 0 else 0.0
        rate, known = (0.0, 0.0) if engagement_rate is None else (float(engagement_rate), 1.0)
        return np.array([min(log_count, 1.0), quality, rate, known], dtype=np.float32)


@dataclass(frozen=True)
class TwoTowerConfig:
    n_users: int  # id vocabulary size including OOV
    n_items: int
    n_genres: int
    n_tags: int
    text_dim: int = 384
    dim: int = 64
    hidden: int = 256
    history: int = 50
    recent: int = 10
    temperature: float = 0.05
    dropout: float = 0.1


def _mlp(inputs: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out))


class ItemTower(nn.Module):
    """id + genres + hashtags + text embedding + engagement → unit vector."""

    def __init__(self, c: TwoTowerConfig) -> None:
        super().__init__()
        self.ids = nn.Embedding(c.n_items, c.dim)
        self.genres = nn.Linear(c.n_genres, c.dim, bias=False)
        self.tags = nn.Linear(c.n_tags, c.dim, bias=False) if c.n_tags else None
        self.text = nn.Linear(c.text_dim, c.dim)
        self.engagement = nn.Linear(ENGAGEMENT_FEATURES, c.dim)
        self.mlp = _mlp(5 * c.dim, c.hidden, c.dim, c.dropout)
        nn.init.normal_(self.ids.weight, std=0.05)

    def forward(self, ids: Tensor, genres: Tensor, tags: Tensor, text: Tensor, engagement: Tensor) -> Tensor:
        tag_part = self.tags(tags) if self.tags is not None else torch.zeros_like(self.genres(genres))
        parts = [self.ids(ids), self.genres(genres), tag_part, self.text(text), self.engagement(engagement)]
        return functional.normalize(self.mlp(torch.cat(parts, dim=-1)), dim=-1)


class UserTower(nn.Module):
    """id + interests (genre/hashtag multi-hot) + pooled recent history → unit vector."""

    def __init__(self, c: TwoTowerConfig) -> None:
        super().__init__()
        self.recent = c.recent
        self.ids = nn.Embedding(c.n_users, c.dim)
        self.interests = nn.Linear(c.n_genres + c.n_tags, c.dim, bias=False)
        self.history = nn.Embedding(c.n_items, c.dim, padding_idx=0)
        self.mlp = _mlp(4 * c.dim, c.hidden, c.dim, c.dropout)
        nn.init.normal_(self.ids.weight, std=0.05)
        nn.init.zeros_(self.interests.weight)  # interests never seen in training (hashtags) stay neutral

    def forward(self, ids: Tensor, interests: Tensor, history: Tensor) -> Tensor:
        """``history``: (B, L) item id indices, oldest first, 0 = padding/unknown (left-padded)."""
        emb = self.history(history)
        mask = (history > 0).float().unsqueeze(-1)
        pooled = (emb * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        r_emb, r_mask = emb[:, -self.recent :], mask[:, -self.recent :]
        recent = (r_emb * r_mask).sum(1) / r_mask.sum(1).clamp(min=1.0)
        parts = [self.ids(ids), self.interests(interests), pooled, recent]
        return functional.normalize(self.mlp(torch.cat(parts, dim=-1)), dim=-1)


class TwoTower(nn.Module):
    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.user = UserTower(config)
        self.item = ItemTower(config)


@dataclass(frozen=True)
class SequenceConfig:
    n_items: int  # id vocabulary size including OOV (0)
    n_genres: int
    dim: int = 64
    layers: int = 2
    heads: int = 2
    max_len: int = 50
    dropout: float = 0.3


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)
        self.p = dropout

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.p if self.training else 0.0
        att = functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.out(att.transpose(1, 2).reshape(b, n, d)))
        out: Tensor = x + self.drop(self.ffn(self.norm2(x)))
        return out


class SASRec(nn.Module):
    """Causal self-attention over the last ``max_len`` items; the output at each position scores the next item
    by inner product with item input embeddings (id embedding + genre projection, so unknown ids still embed)."""

    def __init__(self, config: SequenceConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.ids = nn.Embedding(c.n_items, c.dim)
        self.genres = nn.Linear(c.n_genres, c.dim, bias=False)
        self.positions = nn.Embedding(c.max_len, c.dim)
        self.blocks = nn.ModuleList([_Block(c.dim, c.heads, c.dropout) for _ in range(c.layers)])
        self.norm = nn.LayerNorm(c.dim)
        self.drop = nn.Dropout(c.dropout)
        nn.init.normal_(self.ids.weight, std=0.05)
        nn.init.normal_(self.positions.weight, std=0.05)

    def item_embeddings(self, ids: Tensor, genres: Tensor) -> Tensor:
        """Input (and output) embedding of items: (..., dim)."""
        out: Tensor = self.ids(ids) + self.genres(genres)
        return out

    def encode(self, items: Tensor, valid: Tensor) -> Tensor:
        """``items``: (B, L, dim) item embeddings, left-padded; ``valid``: (B, L) bool. Returns (B, L, dim)."""
        _, n, _ = items.shape
        pos = self.positions(torch.arange(self.config.max_len - n, self.config.max_len, device=items.device))
        x = self.drop((items * math.sqrt(self.config.dim) + pos) * valid.unsqueeze(-1))
        causal = torch.ones(n, n, dtype=torch.bool, device=items.device).tril()
        eye = torch.eye(n, dtype=torch.bool, device=items.device)
        mask = ((causal & valid[:, None, :]) | eye).unsqueeze(1)  # (B, 1, L, L); a padded row sees itself
        for block in self.blocks:
            x = block(x, mask) * valid.unsqueeze(-1)
        out: Tensor = self.norm(x)
        return out


def left_pad(rows: Sequence[Sequence[int]], length: int) -> NDArray[np.int64]:
    """The last ``length`` entries of each row, right-aligned, 0-padded on the left."""
    out = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        tail = list(row)[-length:]
        if tail:
            out[i, length - len(tail) :] = tail
    return out
