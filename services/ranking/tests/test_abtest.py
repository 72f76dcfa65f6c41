import pytest

from creatormesh.ranking import abtest


def test_bucketing_is_deterministic_and_splits_by_share() -> None:
    arms = [abtest.choose_arm(f"user-{i}", "exp-a", 0.3).name for i in range(4000)]
    again = [abtest.choose_arm(f"user-{i}", "exp-a", 0.3).name for i in range(4000)]
    assert arms == again
    share = arms.count(abtest.OVERDRIVE) / len(arms)
    assert 0.27 < share < 0.33
    assert {abtest.choose_arm("u", "e", 0.5).source} == {abtest.BUCKET}


def test_experiments_are_bucketed_independently() -> None:
    a = [abtest.bucket_value(f"user-{i}", "exp-a") < 0.5 for i in range(2000)]
    b = [abtest.bucket_value(f"user-{i}", "exp-b") < 0.5 for i in range(2000)]
    agreement = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    assert 0.45 < agreement < 0.55


@pytest.mark.parametrize(
    ("value", "arm"), [("1", "overdrive"), ("true", "overdrive"), ("0", "control"), ("False", "control")]
)
def test_header_forces_the_arm(value: str, arm: str) -> None:
    chosen = abtest.choose_arm("u", "e", 0.0 if arm == "overdrive" else 1.0, value)
    assert (chosen.name, chosen.source) == (arm, abtest.HEADER)


def test_unreadable_header_is_an_error() -> None:
    with pytest.raises(ValueError, match="x-use-overdrive"):
        abtest.choose_arm("u", "e", 0.5, "maybe")
    assert abtest.parse_toggle("") is None
