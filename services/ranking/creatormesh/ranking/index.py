"""Item index: inner-product search over unit-norm item vectors with FAISS.

Exact (IndexFlatIP) up to ``exact_max_items`` live items, HNSW above; IVF when forced with ``kind="ivf"``.
FAISS HNSW cannot delete, so every vector gets a row: re-adding an id marks its old row dead, searches over-fetch
and drop dead rows, and the index is rebuilt from the stored vectors once dead rows exceed 20 %, when ``auto``
grows past the exact threshold, or when an IVF index has doubled since it was trained.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import faiss
import numpy as np
from numpy.typing import NDArray

KINDS = ("auto", "flat", "hnsw", "ivf")
_T = TypeVar("_T")
DEAD_SHARE = 0.2  # rebuild when more than this share of rows is dead
MIN_REBUILD_ROWS = 64  # below this many rows dead rows are cheap: never rebuild for them alone


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (the consumer thread is not starved)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class ItemIndex:
    """Inner-product search over unit-norm item vectors; exact (IndexFlatIP) up to `exact_max_items`, HNSW above
    (IndexHNSWFlat, METRIC_INNER_PRODUCT, M=hnsw_m, efConstruction=ef_construction, efSearch=ef_search);
    IVF (IndexIVFFlat, nlist ≈ 4·sqrt(n), `nprobe` lists searched) when `kind="ivf"` is forced.
    Thread-safe: one writer (add) at a time, any number of concurrent searches. FAISS runs one OpenMP thread per
    search and `build_threads` for adds, set in whichever thread calls (OpenMP keeps the count per thread)."""

    def __init__(
        self,
        dim: int,
        *,
        exact_max_items: int = 20_000,
        ef_search: int = 128,
        hnsw_m: int = 32,
        kind: str = "auto",
        nprobe: int = 32,
        ef_construction: int = 200,
        build_threads: int = 1,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        faiss.omp_set_num_threads(1)  # many small concurrent searches: one thread each is fastest
        self.build_threads = build_threads
        self.dim = dim
        self.exact_max_items = exact_max_items
        self.ef_search = ef_search
        self.hnsw_m = hnsw_m
        self.nprobe = nprobe
        self.ef_construction = ef_construction
        self._requested = kind
        self._vectors = np.empty((0, dim), dtype=np.float32)  # row -> vector (capacity grows by doubling)
        self._alive = np.empty(0, dtype=bool)  # row -> still the current vector of its id
        self._row_ids: list[str] = []  # row -> item id
        self._keys = np.empty(0, dtype=np.int64)  # row -> the caller's integer key of the item (-1 = none)
        self._rows: dict[str, int] = {}  # item id -> its live row
        self._trained_rows = 0  # IVF: rows when the coarse quantizer was trained
        self._kind = self._kind_for(0)
        self._index: Any = self._new_index(self._kind, self._vectors[:0])
        self._rw = _ReadWriteLock()
        self._writer = threading.Lock()  # serialises add(); rebuilds happen outside the read/write lock

    @property
    def kind(self) -> str:
        """The structure in use now: "flat", "hnsw" or "ivf"."""
        return self._kind

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    def tune(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change the search breadth (HNSW efSearch, IVF nprobe) without rebuilding."""
        with self._rw.write():
            if ef_search is not None:
                self.ef_search = ef_search
                if self._kind == "hnsw":
                    self._index.hnsw.efSearch = ef_search
            if nprobe is not None:
                self.nprobe = nprobe
                if self._kind == "ivf":
                    self._index.nprobe = min(nprobe, self._index.nlist)

    def vector(self, item_id: str) -> NDArray[np.float32] | None:
        """A copy of the item's current vector, or None for an unknown id."""
        with self._rw.read():
            row = self._rows.get(item_id)
            return None if row is None else self._vectors[row].copy()

    def vectors(self, ids: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Copies of the vectors of ``ids`` (rows of zeros for unknown ids) and which ids were found."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        with self._rw.read():
            rows = [self._rows.get(i) for i in ids]
            found = np.array([r is not None for r in rows], dtype=bool)
            if found.any():
                out[found] = self._vectors[[r for r in rows if r is not None]]
        return out, found

    def add(self, ids: Sequence[str], vectors: NDArray[np.float32], keys: NDArray[np.int64] | None = None) -> None:
        """Upsert: new ids are added, an id already present gets the new vector (the last one wins in a batch).
        ``keys`` are integers of the caller's (its row numbers for the items) that ``search_keys`` returns."""
        batch = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim) if len(ids) else None
        if batch is None:
            return
        if batch.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} ids but {batch.shape[0]} vectors")
        key_batch = np.full(len(ids), -1, dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
        if key_batch.shape != (len(ids),):
            raise ValueError(f"{len(ids)} ids but {key_batch.shape} keys")
        last = {item_id: i for i, item_id in enumerate(ids)}  # duplicates in one batch: the last wins
        if len(last) < len(ids):
            keep = sorted(last.values())
            ids = [ids[i] for i in keep]
            batch = batch[keep]
            key_batch = key_batch[keep]
        with self._writer:
            faiss.omp_set_num_threads(self.build_threads)  # OpenMP thread counts are per calling thread
            replaced = [self._rows[i] for i in ids if i in self._rows]
            live = len(self._rows) + len(ids) - len(replaced)
            rows = len(self._row_ids) + len(ids)
            dead = rows - live
            kind = self._kind_for(live)
            retrain = kind == "ivf" and rows > 2 * max(self._trained_rows, 1)
            if kind != self._kind or retrain or (rows >= MIN_REBUILD_ROWS and dead > DEAD_SHARE * rows):
                self._rebuild(kind, list(ids), batch, key_batch)
            else:
                self._append(list(ids), batch, key_batch, replaced)

    def search(self, query: NDArray[np.float32], k: int, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The k items with the highest inner product with `query`, best first, never an excluded id."""
        return self.search_many(np.asarray(query, dtype=np.float32).reshape(1, self.dim), k, [exclude])[0]

    def search_many(
        self, queries: NDArray[np.float32], k: int, excludes: Sequence[Collection[str]]
    ) -> list[list[tuple[str, float]]]:
        """``search`` for each row of ``queries`` (with ``excludes[i]`` left out of row i's results) in one
        FAISS call; a row whose filters leave too few results is searched again, wider."""

        def ids(rows: NDArray[np.int64], scores: NDArray[np.float32]) -> list[tuple[str, float]]:
            return list(zip([self._row_ids[r] for r in rows.tolist()], scores.tolist(), strict=True))

        return self._search(queries, k, excludes, ids)

    def search_keys(
        self, queries: NDArray[np.float32], k: int, excludes: Sequence[Collection[str]]
    ) -> list[NDArray[np.int64]]:
        """``search_many`` giving the items' keys (see ``add``), best first, instead of ids and scores."""
        return self._search(queries, k, excludes, lambda rows, _: self._keys[rows])

    def _search(
        self, queries: NDArray[np.float32], k: int, excludes: Sequence[Collection[str]],
        convert: Callable[[NDArray[np.int64], NDArray[np.float32]], _T],
    ) -> list[_T]:  # fmt: skip
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if len(excludes) != q.shape[0]:
            raise ValueError(f"{q.shape[0]} queries but {len(excludes)} exclude sets")
        none = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        faiss.omp_set_num_threads(1)  # per calling thread: request threads must not each start an OpenMP team
        with self._rw.read():
            if k <= 0 or not q.shape[0] or not self._rows:
                return [convert(*none) for _ in excludes]
            rows, live = len(self._row_ids), len(self._rows)
            row_of = self._rows.get
            skip = [np.fromiter((r for i in e if (r := row_of(i)) is not None), dtype=np.int64) for e in excludes]
            # over-fetch for dead and excluded rows; widen a row if the filters still leave too few
            fetch = min(rows, math.ceil((k + max(len(x) for x in skip)) * rows / live) + 8)
            labels, scores = self._search_rows(q, fetch)
            out = []
            for i, excluded in enumerate(skip):
                wanted = min(k, live - len(excluded))
                mine, wider = self._usable(labels[i], excluded), fetch
                while wanted > 0 and mine.sum() < wanted and wider < rows:
                    wider = min(rows, wider * 2)
                    row_labels, row_scores = self._search_rows(q[i : i + 1], wider)
                    labels_i, scores_i = row_labels[0], row_scores[0]
                    mine = self._usable(labels_i, excluded)
                if wider == fetch:
                    labels_i, scores_i = labels[i], scores[i]
                keep = np.flatnonzero(mine)[: max(wanted, 0)]
                out.append(convert(labels_i[keep], scores_i[keep]))
            return out

    # -- internals (callers hold the locks) --

    def _usable(self, labels: NDArray[np.int64], excluded: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Which of the found rows are real, alive and not excluded."""
        ok = labels >= 0
        ok[ok] = self._alive[labels[ok]]
        if len(excluded):
            ok &= ~np.isin(labels, excluded)
        return ok

    def _search_rows(self, q: NDArray[np.float32], fetch: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The best `fetch` rows per query, best first ((n, fetch) rows, -1 where there are fewer, and scores)."""
        rows = len(self._row_ids)
        if fetch >= rows and self._kind != "flat":  # asking for everything: a scan is exact and no slower
            all_scores = q @ self._vectors[:rows].T
            order = np.argsort(-all_scores, axis=1, kind="stable")
            return order.astype(np.int64), np.take_along_axis(all_scores, order, axis=1)
        scores, labels = self._index.search(q, fetch)
        return labels, scores

    def _kind_for(self, live: int) -> str:
        if self._requested != "auto":
            return self._requested
        return "flat" if live <= self.exact_max_items else "hnsw"

    def _new_index(self, kind: str, vectors: NDArray[np.float32]) -> Any:
        """A FAISS index of `kind` holding `vectors` as rows 0..n-1."""
        index: Any
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        elif kind == "ivf":
            n = vectors.shape[0]
            nlist = max(1, min(round(4 * math.sqrt(n)), n // 39))  # FAISS wants ≥ 39 training points per list
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)  # keeps a reference
            if n:
                index.train(vectors)
            index.nprobe = min(self.nprobe, nlist)
        else:
            index = faiss.IndexFlatIP(self.dim)
        if vectors.shape[0]:
            index.add(vectors)
        return index

    def _append(self, ids: list[str], batch: NDArray[np.float32], keys: NDArray[np.int64], replaced: list[int]) -> None:
        start = len(self._row_ids)
        end = start + len(ids)
        if self._kind == "ivf" and not self._index.is_trained:
            self._rebuild("ivf", ids, batch, keys)
            return
        with self._rw.write():
            if end > self._vectors.shape[0]:
                capacity = max(end, 2 * self._vectors.shape[0], 1024)
                vectors = np.empty((capacity, self.dim), dtype=np.float32)
                vectors[:start] = self._vectors[:start]
                alive = np.zeros(capacity, dtype=bool)
                alive[:start] = self._alive[:start]
                row_keys = np.full(capacity, -1, dtype=np.int64)
                row_keys[:start] = self._keys[:start]
                self._vectors, self._alive, self._keys = vectors, alive, row_keys
            self._vectors[start:end] = batch
            self._keys[start:end] = keys
            self._index.add(batch)
            self._alive[replaced] = False
            self._alive[start:end] = True
            self._row_ids.extend(ids)
            for offset, item_id in enumerate(ids):
                self._rows[item_id] = start + offset

    def _rebuild(self, kind: str, ids: list[str], batch: NDArray[np.float32], keys: NDArray[np.int64]) -> None:
        """Compact the live rows plus the batch into a fresh index; searches use the old one meanwhile."""
        new = set(ids)
        keep = [(item_id, row) for item_id, row in self._rows.items() if item_id not in new]
        old_rows = np.fromiter((row for _, row in keep), dtype=np.int64, count=len(keep))
        vectors = np.concatenate([self._vectors[old_rows], batch]) if keep else batch.copy()
        row_ids = [item_id for item_id, _ in keep] + ids
        row_keys = np.concatenate([self._keys[old_rows], keys])
        index = self._new_index(kind, vectors)
        with self._rw.write():
            self._index = index
            self._kind = kind
            self._vectors = vectors
            self._alive = np.ones(len(row_ids), dtype=bool)
            self._keys = row_keys
            self._row_ids = row_ids
            self._rows = {item_id: row for row, item_id in enumerate(row_ids)}
            self._trained_rows = len(row_ids) if kind == "ivf" else 0
