"""Pool split: exact integer cents, largest remainder with creator_id ties, floors and
caps by water-filling, validation naming the field, and hypothesis properties (sum,
non-negative, bounds, proportionality, determinism, permutation invariance)."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from creatormesh.allocation.pool import MAX_BUDGET_CENTS, Member, Part, members, split
from creatormesh.common.errors import InvalidArgument

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def amounts(parts: list[Part]) -> list[int]:
    return [p.amount_cents for p in parts]


# --- examples ----------------------------------------------------------------------------------


def test_proportional_split() -> None:
    parts = split(100, [Member("a", 1.0), Member("b", 1.0), Member("c", 2.0)])
    assert amounts(parts) == [25, 25, 50]
    assert [p.share for p in parts] == [0.25, 0.25, 0.5]
    assert [p.score for p in parts] == [1.0, 1.0, 2.0]
    assert not any(p.floor_applied or p.cap_applied for p in parts)


def test_largest_remainder_ties_go_to_the_smaller_creator_id() -> None:
    parts = split(10, [Member("b", 1.0), Member("c", 1.0), Member("a", 1.0)])
    assert [(p.creator_id, p.amount_cents) for p in parts] == [("b", 3), ("c", 3), ("a", 4)]
    parts = split(11, [Member("b", 1.0), Member("c", 1.0), Member("a", 1.0)])
    assert amounts(parts) == [4, 3, 4]


def test_largest_remainder_goes_to_the_largest_fraction() -> None:
    # quotas 1.43, 2.86, 5.71 -> floors 1, 2, 5 (8), remainders .43 .86 .71: +1 to b and c
    assert amounts(split(10, [Member("a", 1), Member("b", 2), Member("c", 4)])) == [1, 3, 6]


def test_all_zero_scores_split_equally() -> None:
    parts = split(1000, [Member(f"m{i}", 0.0) for i in range(4)])
    assert amounts(parts) == [250] * 4


def test_zero_score_members_get_nothing_beyond_their_floor() -> None:
    parts = split(1000, [Member("a", 0.0), Member("b", 1.0), Member("c", 0.0, floor_cents=100)])
    assert amounts(parts) == [0, 900, 100]
    assert parts[2].floor_applied and not parts[0].floor_applied


def test_floor_raises_a_part_and_the_rest_stays_proportional() -> None:
    parts = split(10_000, [Member("a", 1, floor_cents=3_000), Member("b", 2), Member("c", 6)])
    assert amounts(parts) == [3_000, 1_750, 5_250]
    assert parts[0].floor_applied and not parts[0].cap_applied
    assert not parts[1].floor_applied and not parts[2].floor_applied


def test_cap_lowers_a_part_and_the_excess_is_shared_proportionally() -> None:
    parts = split(10_000, [Member("a", 8, cap_cents=2_000), Member("b", 1), Member("c", 3)])
    assert amounts(parts) == [2_000, 2_000, 6_000]
    assert parts[0].cap_applied and not parts[1].cap_applied


def test_floors_and_caps_together() -> None:
    ms = [
        Member("a", 10, cap_cents=4_000),  # would get 6,250
        Member("b", 1, floor_cents=2_000),  # would get 625
        Member("c", 3),
        Member("d", 2, floor_cents=500, cap_cents=900),
    ]
    parts = split(10_000, ms)
    assert sum(amounts(parts)) == 10_000
    assert parts[0].amount_cents == 4_000 and parts[0].cap_applied
    assert parts[1].amount_cents == 2_000 and parts[1].floor_applied
    assert parts[3].amount_cents == 900 and parts[3].cap_applied
    assert parts[2].amount_cents == 10_000 - 4_000 - 2_000 - 900


def test_cascading_caps() -> None:
    # capping a pushes b over its cap too
    parts = split(1_000, [Member("a", 5, cap_cents=100), Member("b", 3, cap_cents=300), Member("c", 2)])
    assert amounts(parts) == [100, 300, 600]
    assert [p.cap_applied for p in parts] == [True, True, False]


def test_everything_capped_spills_to_zero_score_members() -> None:
    parts = split(1_000, [Member("a", 5, cap_cents=100), Member("b", 0), Member("c", 0, cap_cents=300)])
    assert amounts(parts) == [100, 600, 300]
    assert parts[0].cap_applied and parts[2].cap_applied


def test_exact_bounds_are_feasible() -> None:
    assert amounts(split(300, [Member("a", 1, cap_cents=100), Member("b", 9, cap_cents=200)])) == [100, 200]
    assert amounts(split(300, [Member("a", 1, floor_cents=100), Member("b", 9, floor_cents=200)])) == [100, 200]


def test_zero_budget_and_single_member() -> None:
    assert amounts(split(0, [Member("a", 1), Member("b", 2)])) == [0, 0]
    assert [p.share for p in split(0, [Member("a", 1)])] == [0.0]
    assert split(0, []) == []
    assert amounts(split(12_345, [Member("solo", 0.3)])) == [12_345]


def test_huge_budget_stays_exact() -> None:
    ms = [Member(f"m{i:03d}", 1 + (i % 7) / 3, floor_cents=i * 1_000 if i % 5 == 0 else None) for i in range(300)]
    parts = split(MAX_BUDGET_CENTS, ms)
    assert sum(amounts(parts)) == MAX_BUDGET_CENTS
    total = math.fsum(m.score for m in ms)
    for m, p in zip(ms, parts, strict=True):
        assert abs(p.amount_cents - MAX_BUDGET_CENTS * m.score / total) < 2


def test_parts_are_frozen_values() -> None:
    part = split(10, [Member("a", 1)])[0]
    assert part == Part("a", 10, 1.0, 1.0, False, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        part.amount_cents = 11  # type: ignore[misc]
    assert Member("a", 1) == Member("a", 1, None, None) and hash(Member("a", 1)) == hash(Member("a", 1))
    assert members(["a", "b"], np.array([1.0, 2.0])) == [Member("a", 1.0), Member("b", 2.0)]


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "ms", "field"),
    [
        (-1, [Member("a", 1)], "budget_cents"),
        (MAX_BUDGET_CENTS + 1, [Member("a", 1)], "budget_cents"),
        (100, [Member("a", 1), Member("b", 1), Member("a", 2)], "members[2].creator_id"),
        (100, [Member("a", 1), Member("b", -0.5)], "members[1].score"),
        (100, [Member("a", 1), Member("b", math.nan)], "members[1].score"),
        (100, [Member("a", math.inf)], "members[0].score"),
        (100, [Member("a", 1), Member("b", "3")], "members[1].score"),  # type: ignore[arg-type]
        (100, [Member("a", 1), Member("b", 1, floor_cents=60, cap_cents=50)], "members[1].floor_cents"),
        (100, [Member("a", 1, floor_cents=-1)], "members[0].floor_cents"),
        (100, [Member("a", 1), Member("b", 1, cap_cents=-1)], "members[1].cap_cents"),
        (100, [Member("a", 1, floor_cents=2.5)], "members[0].floor_cents"),  # type: ignore[arg-type]
        (100, [Member("a", 1, floor_cents=60), Member("b", 1, floor_cents=41)], "members"),
        (100, [Member("a", 1, cap_cents=60), Member("b", 1, cap_cents=39)], "members"),
        (100, [], "members"),
    ],
)
def test_invalid_input_names_the_field(budget: int, ms: list[Member], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        split(budget, ms)
    assert info.value.field == field


# --- properties --------------------------------------------------------------------------------

# Positive scores from 1e-9 up: below that, the level checks' own arithmetic (amount / score) overflows.
score = st.one_of(st.just(0.0), st.floats(1e-9, 1e6, allow_nan=False, allow_infinity=False), st.integers(0, 1000))


@st.composite
def pools(draw: st.DrawFn) -> tuple[int, list[Member]]:
    n = draw(st.integers(1, 25))
    ids = draw(st.lists(st.text(min_size=1, max_size=6), min_size=n, max_size=n, unique=True))
    budget = draw(st.one_of(st.integers(0, 1_000), st.integers(0, 10**9), st.integers(0, MAX_BUDGET_CENTS)))
    ms = []
    for cid in ids:
        floor = draw(st.one_of(st.none(), st.integers(0, max(1, budget // n))))
        cap = draw(st.one_of(st.none(), st.integers(floor or 0, budget + 10)))
        ms.append(Member(cid, draw(score), floor, cap))
    assume(sum(m.floor_cents or 0 for m in ms) <= budget)
    assume(any(m.cap_cents is None for m in ms) or sum(m.cap_cents or 0 for m in ms) >= budget)
    return budget, ms


@PROPERTY
@given(pools())
def test_parts_sum_to_the_budget_within_bounds(pool: tuple[int, list[Member]]) -> None:
    budget, ms = pool
    parts = split(budget, ms)
    assert sum(amounts(parts)) == budget
    assert [p.creator_id for p in parts] == [m.creator_id for m in ms]
    for m, p in zip(ms, parts, strict=True):
        assert isinstance(p.amount_cents, int) and p.amount_cents >= 0
        assert m.floor_cents is None or p.amount_cents >= m.floor_cents
        assert m.cap_cents is None or p.amount_cents <= m.cap_cents
        assert p.share == (p.amount_cents / budget if budget else 0.0)
        assert not (p.floor_applied and p.cap_applied)


@PROPERTY
@given(pools(), st.randoms(use_true_random=False))
def test_deterministic_and_permutation_invariant(pool: tuple[int, list[Member]], rng: random.Random) -> None:
    budget, ms = pool
    first = split(budget, ms)
    assert split(budget, list(ms)) == first
    shuffled = ms[:]
    rng.shuffle(shuffled)
    by_id = {p.creator_id: p for p in split(budget, shuffled)}
    assert [by_id[p.creator_id] for p in first] == first


@PROPERTY
@given(st.integers(0, 10**12), st.lists(score, min_size=1, max_size=40))
def test_without_bounds_each_part_is_within_a_cent_of_its_quota(budget: int, scores: list[float]) -> None:
    parts = split(budget, [Member(f"c{i:02d}", s) for i, s in enumerate(scores)])
    weights = scores if any(s > 0 for s in scores) else [1.0] * len(scores)
    total = math.fsum(weights)
    for w, p in zip(weights, parts, strict=True):
        quota = budget * w / total
        assert abs(p.amount_cents - quota) < 1 + 1e-6 * max(1.0, quota) ** 0.5


@PROPERTY
@given(pools())
def test_unconstrained_members_share_one_level(pool: tuple[int, list[Member]]) -> None:
    """Water-filling: members neither at a floor nor at a cap all get ~λ·score, and
    λ·score is below a capped member's cap-per-score and above a floored member's."""
    budget, ms = pool
    parts = split(budget, ms)
    free = [
        (m, p)
        for m, p in zip(ms, parts, strict=True)
        if m.score > 0 and not p.floor_applied and not p.cap_applied and any(x.score > 0 for x in ms)
    ]
    assume(len(free) >= 2)
    levels = [p.amount_cents / m.score for m, p in free]
    low = min(levels)
    high = max(levels)
    slack = max(1 / m.score for m, _ in free) * 1.000001 + 1e-9
    assert high - low <= 2 * slack
    for m, p in zip(ms, parts, strict=True):
        if p.cap_applied and m.score > 0 and m.cap_cents is not None:
            assert m.cap_cents / m.score <= high + slack
        if p.floor_applied and m.score > 0 and m.floor_cents is not None:
            assert m.floor_cents / m.score >= low - slack


def test_large_pool_is_exact_and_permutation_invariant() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    scores = rng.lognormal(0, 1, n)
    ids = [f"creator-{i:05d}" for i in range(n)]
    floors = [int(f) if f > 400 else None for f in rng.integers(0, 500, n)]
    caps = [int(c) if c > 90_000 else None for c in rng.integers(1_000, 100_000, n)]
    ms = members(ids, scores, floors, caps)
    parts = split(500_000_000, ms)
    assert sum(amounts(parts)) == 500_000_000
    order = rng.permutation(n)
    again = {p.creator_id: p.amount_cents for p in split(500_000_000, [ms[i] for i in order])}
    assert [again[i] for i in ids] == amounts(parts)


def test_tiny_positive_scores_split_like_equal_ones() -> None:
    parts = split(4, [Member("a", 0.0), Member("b", 1.1125369292536007e-308), Member("c", 1.1125369292536007e-308)])
    assert [p.amount_cents for p in parts] == [0, 2, 2]
