"""Simple baselines for the propagation label: global mean, category x hour means, ridge regression."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from creatormesh.viral_scoring.features import FeatureBatch


def mean_baseline(y_train: NDArray[np.float32], n: int) -> NDArray[np.float32]:
    return np.full(n, float(y_train.mean()), dtype=np.float32)


def category_hour_means(
    train_keys: list[tuple[int | None, int | None]],
    y_train: NDArray[np.float32],
    test_keys: list[tuple[int | None, int | None]],
    shrink: float = 5.0,
) -> NDArray[np.float32]:
    """Mean label of the (category, posting hour band) cell, shrunk towards the category mean, then the global."""
    glob = float(y_train.mean())
    cats: dict[int | None, list[float]] = {}
    cells: dict[tuple[int | None, int | None], list[float]] = {}
    for key, y in zip(train_keys, y_train, strict=True):
        cats.setdefault(key[0], []).append(float(y))
        cells.setdefault(key, []).append(float(y))

    def shrunk(values: list[float], prior: float) -> float:
        return (sum(values) + shrink * prior) / (len(values) + shrink)

    out = []
    for key in test_keys:
        cat = shrunk(cats.get(key[0], []), glob)
        out.append(shrunk(cells.get(key, []), cat))
    return np.asarray(out, dtype=np.float32)


def ridge_fit(x: NDArray[np.float32], y: NDArray[np.float32], alpha: float) -> NDArray[np.float64]:
    xb = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]).astype(np.float64)
    reg = alpha * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    return np.asarray(np.linalg.solve(xb.T @ xb + reg, xb.T @ y.astype(np.float64)), dtype=np.float64)


def ridge_predict(w: NDArray[np.float64], x: NDArray[np.float32]) -> NDArray[np.float32]:
    return (np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]) @ w).astype(np.float32)


def ridge_cv(
    x: NDArray[np.float32], y: NDArray[np.float32], x_test: NDArray[np.float32], folds: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Ridge with alpha chosen by grouped cross-validation on the training part (``folds`` = fold per row)."""
    best, best_err = 1.0, float("inf")
    for alpha in (0.1, 1.0, 3.0, 10.0, 30.0, 100.0):
        err = 0.0
        for f in np.unique(folds):
            w = ridge_fit(x[folds != f], y[folds != f], alpha)
            err += float(((ridge_predict(w, x[folds == f]) - y[folds == f]) ** 2).sum())
        if err < best_err:
            best, best_err = alpha, err
    return np.clip(ridge_predict(ridge_fit(x, y, best), x_test), 0, 1)


def content_matrix(f: FeatureBatch) -> NDArray[np.float32]:
    return np.hstack([f.embedding, f.stats])


def behaviour_matrix(f: FeatureBatch) -> NDArray[np.float32]:
    return np.hstack([f.embedding, f.stats, f.behavioural])
