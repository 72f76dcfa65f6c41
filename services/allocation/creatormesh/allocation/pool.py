"""Pool split: a budget in integer cents across members, in proportion to their
scores, with optional per-member floors and caps; the parts sum exactly to the budget.

Method (:func:`split`):

1. Weights are the scores, divided by the largest (if every score is 0, every member
   weighs 1: an equal split).
2. Water-filling: each member with a positive weight gets ``clip(λ·w, lo, hi)`` where
   ``lo`` is its floor (0 if none), ``hi`` its cap (the budget if none) and the water
   level λ is chosen so the amounts sum to the budget. ``Σ clip(λ·w, lo, hi)`` is a
   continuous non-decreasing piecewise-linear function of λ whose kinks are the
   ``lo/w`` and ``hi/w``; a binary search over the sorted kinks finds the segment
   holding the budget, where λ is solved exactly (O(n log n), no iteration limit,
   unlike fixing violators round by round). Floors and caps then both
   hold and every member strictly between its bounds gets the same multiple λ of
   its score. Members with weight 0 sit at their floors; only if every positive-weight
   member is capped does the rest go to them, equally (the same water-filling with
   weight 1).
3. Rounding: every amount is floored to whole cents, and the cents left over go one
   each to the largest fractional remainders (largest-remainder method), ties broken
   by creator_id ascending, never above a cap; the parts then sum exactly to the budget.

Determinism: the computation runs on the members sorted by creator_id and the result
is put back into the members' order, so the same members in any order get the same
amounts (bit for bit).
"""

from __future__ import annotations

import gc
import math
import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from creatormesh.common.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Largest budget accepted (the contract's 10^15 cents); amounts stay exact in float64.
MAX_BUDGET_CENTS = 10**15


@dataclass(frozen=True, init=False)
class Member:
    """A pool member: a score >= 0 and optional floor/cap in cents (``floor <= cap``)."""

    creator_id: str
    score: float
    floor_cents: int | None = None
    cap_cents: int | None = None

    # A hand-written __init__ (same signature as the generated one) is ~3× faster for a
    # frozen dataclass: pools have up to 100,000 members.
    def __init__(
        self, creator_id: str, score: float, floor_cents: int | None = None, cap_cents: int | None = None
    ) -> None:
        d = self.__dict__
        d["creator_id"] = creator_id
        d["score"] = score
        d["floor_cents"] = floor_cents
        d["cap_cents"] = cap_cents


@dataclass(frozen=True, init=False)
class Part:
    """A member's part: ``share = amount_cents / budget_cents`` (0 for a zero budget)."""

    creator_id: str
    amount_cents: int
    share: float
    score: float
    floor_applied: bool
    cap_applied: bool

    def __init__(
        self, creator_id: str, amount_cents: int, share: float, score: float, floor_applied: bool, cap_applied: bool
    ) -> None:
        d = self.__dict__
        d["creator_id"] = creator_id
        d["amount_cents"] = amount_cents
        d["share"] = share
        d["score"] = score
        d["floor_applied"] = floor_applied
        d["cap_applied"] = cap_applied


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects
    (it would otherwise rescan the whole heap several times per 100,000 objects)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def members(
    creator_ids: Sequence[str],
    scores: Sequence[float] | FloatArray,
    floors: Sequence[int | None] | None = None,
    caps: Sequence[int | None] | None = None,
) -> list[Member]:
    """Build many :class:`Member` at once (fast: numpy scores become floats in one go)."""
    n = len(creator_ids)
    values = scores.tolist() if isinstance(scores, np.ndarray) else list(scores)
    with paused_gc():
        return list(map(Member, creator_ids, values, floors or [None] * n, caps or [None] * n))


def _cents(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidArgument(field, "must be a whole number of cents")
    try:
        cents = operator.index(value)
    except TypeError:
        raise InvalidArgument(field, f"must be a whole number of cents, got {value!r}") from None
    if cents < 0:
        raise InvalidArgument(field, f"must be >= 0, got {cents}")
    return cents


def _bounds(values: list[int | None], name: str) -> tuple[list[int], list[bool]]:
    """Validated bounds (None → 0) and which were given."""
    n = len(values)
    if values.count(None) == n:
        return [0] * n, [False] * n
    given = [v is not None for v in values]
    out = [0] * n
    for i, v in enumerate(values):
        if v is not None:
            out[i] = _cents(v, f"members[{i}].{name}")
    return out, given


_NUMBER_TYPES = {int, float, np.float64, np.float32, np.int64, np.int32}


def _scores(raw: list[Any]) -> FloatArray:
    if not {type(v) for v in raw} <= _NUMBER_TYPES:
        for i, v in enumerate(raw):
            if type(v) not in _NUMBER_TYPES and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise InvalidArgument(f"members[{i}].score", f"must be a number, got {v!r}")
    scores = np.fromiter(raw, np.float64, len(raw))
    bad = np.flatnonzero(~(np.isfinite(scores) & (scores >= 0)))
    if bad.size:
        first = int(bad[0])
        raise InvalidArgument(f"members[{first}].score", f"must be a finite number >= 0, got {raw[first]!r}")
    return scores


def _validate(
    budget_cents: int, members: Sequence[Member]
) -> tuple[int, list[str], FloatArray, list[int], list[bool], list[int], list[bool]]:
    budget = _cents(budget_cents, "budget_cents")
    if budget > MAX_BUDGET_CENTS:
        raise InvalidArgument("budget_cents", f"must be at most {MAX_BUDGET_CENTS}, got {budget}")
    ids = [m.creator_id for m in members]
    if {type(c) for c in ids} - {str}:
        for i, cid in enumerate(ids):
            if not isinstance(cid, str):
                raise InvalidArgument(f"members[{i}].creator_id", f"must be a string, got {cid!r}")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for i, cid in enumerate(ids):
            if cid in seen:
                raise InvalidArgument(f"members[{i}].creator_id", f"duplicate creator_id {cid!r}")
            seen.add(cid)
    scores = _scores([m.score for m in members])
    floors, has_floor = _bounds([m.floor_cents for m in members], "floor_cents")
    caps, has_cap = _bounds([m.cap_cents for m in members], "cap_cents")
    if any(has_floor) and any(has_cap):
        for i, (f, c, h) in enumerate(zip(floors, caps, has_cap, strict=True)):
            if h and f > c:
                raise InvalidArgument(f"members[{i}].floor_cents", f"must not exceed cap_cents ({f} > {c})")
    if not members:
        if budget:
            raise InvalidArgument("members", "at least one member is needed to receive the budget")
        return budget, ids, scores, floors, has_floor, caps, has_cap
    floor_total = sum(floors)
    if floor_total > budget:
        raise InvalidArgument("members", f"the floors sum to {floor_total} cents, more than the budget ({budget})")
    if all(has_cap):
        cap_total = sum(caps)
        if cap_total < budget:
            raise InvalidArgument(
                "members", f"the caps sum to {cap_total} cents, less than the budget ({budget}): infeasible"
            )
    return budget, ids, scores, floors, has_floor, caps, has_cap


_FAR = 1e300


def _fill(total: float, w: FloatArray, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, float]:
    """``x = clip(λ·w, lo, hi)`` with ``Σx = total`` (w > 0, Σlo <= total <= Σhi); returns (x, λ).

    The level ``Σ clip(λ·w, lo, hi)`` is evaluated directly (sums of non-negative terms,
    no cancellation) in a binary search over the sorted breakpoints; between the two
    breakpoints that bracket the budget the active members are fixed and λ is solved for."""
    with np.errstate(over="ignore"):  # a tiny weight: its breakpoints go beyond any reachable level
        a, b = np.minimum(lo / w, _FAR), np.minimum(hi / w, _FAR)
    cand = np.unique(np.concatenate([a, b]))

    def level(lam: float) -> float:
        return float(np.clip(lam * w, lo, hi).sum())

    if level(float(cand[-1])) < total:  # only by rounding: everyone at the cap
        return hi.copy(), float(cand[-1])
    first, last = 0, len(cand) - 1
    while first < last:
        mid = (first + last) // 2
        if level(float(cand[mid])) >= total:
            last = mid
        else:
            first = mid + 1
    if first == 0:
        lam = float(cand[0])
    else:
        left, right = float(cand[first - 1]), float(cand[first])
        below = a >= right  # at the floor all through (left, right)
        above = b <= left  # at the cap all through
        active = ~(below | above)
        weight = float(w[active].sum())
        fixed = float(lo[below].sum()) + float(hi[above].sum())
        lam = left if weight <= 0 else min(right, max(left, (total - fixed) / weight))
    return np.clip(lam * w, lo, hi), lam


def _round(budget: int, x: FloatArray, lo: IntArray, hi: IntArray) -> IntArray:
    """Whole cents: floor, then one cent each to the largest remainders (stable order =
    creator_id order for ties) until the sum is exact, never leaving [lo, hi]."""
    base = np.clip(np.floor(x), lo, hi).astype(np.int64)
    rem = x - base
    left = budget - int(base.sum())
    while left != 0:
        if left > 0:
            room = np.flatnonzero(base < hi)
            take = room[np.argsort(-rem[room], kind="stable")][:left]
            base[take] += 1
            rem[take] -= 1.0
            left -= len(take)
        else:
            room = np.flatnonzero(base > lo)
            take = room[np.argsort(rem[room], kind="stable")][:-left]
            base[take] -= 1
            rem[take] += 1.0
            left += len(take)
    return base


def split(budget_cents: int, members: Sequence[Member]) -> list[Part]:
    """Split ``budget_cents`` across ``members`` (see the module docstring); parts in the
    members' order, summing exactly to the budget.

    Errors (:class:`InvalidArgument`): ``budget_cents`` negative or above 10^15;
    ``members[i].creator_id`` duplicate; ``members[i].score`` negative, NaN or infinite;
    ``members[i].floor_cents`` / ``cap_cents`` negative or floor > cap; ``members`` when
    the floors sum to more than the budget or every member is capped and the caps sum
    to less (infeasible).
    """
    budget, ids, scores, floors, has_floor, caps, has_cap = _validate(budget_cents, members)
    n = len(ids)
    if n == 0:
        return []
    order = sorted(range(n), key=ids.__getitem__)
    idx = np.array(order, dtype=np.int64)
    w = scores[idx]
    top = float(w.max())
    w = w / top if top > 0 else np.ones(n)  # scale-free: the largest weight is 1
    floor_given = np.array(has_floor, dtype=bool)[idx]
    cap_given = np.array(has_cap, dtype=bool)[idx]
    lo_i = np.array(floors, dtype=np.int64)[idx]
    hi_i = np.where(cap_given, np.minimum(np.array(caps, dtype=np.int64)[idx], budget), budget)
    lo, hi = lo_i.astype(np.float64), hi_i.astype(np.float64)

    pos = w > 0
    x = lo.copy()
    raw = np.zeros(n)  # the proportional level λ·w before floors and caps
    rest = float(budget) - math.fsum(lo[~pos])
    if rest <= math.fsum(hi[pos]):
        x[pos], lam = _fill(rest, w[pos], lo[pos], hi[pos])
        raw[pos] = lam * w[pos]
    else:  # every positive-weight member is capped: the rest goes equally to the others
        x[pos] = hi[pos]
        raw[pos] = math.inf
        zero = ~pos
        x[zero], lam = _fill(float(budget) - math.fsum(hi[pos]), np.ones(int(zero.sum())), lo[zero], hi[zero])
        raw[zero] = lam

    amounts_sorted = _round(budget, x, lo_i, hi_i)
    floor_applied = floor_given & (raw < lo)
    cap_applied = cap_given & (raw > np.array(caps, dtype=np.float64)[idx])

    amounts = np.empty(n, dtype=np.int64)
    amounts[idx] = amounts_sorted
    floor_flags = np.empty(n, dtype=bool)
    floor_flags[idx] = floor_applied
    cap_flags = np.empty(n, dtype=bool)
    cap_flags[idx] = cap_applied
    shares = amounts / budget if budget else np.zeros(n)
    with paused_gc():
        return list(
            map(Part, ids, amounts.tolist(), shares.tolist(), scores.tolist(), floor_flags.tolist(), cap_flags.tolist())
        )
