"""MovieLens-layout loading and the time-ordered split."""

from __future__ import annotations

from pathlib import Path

import pytest

from creatormesh.ranking.data import (
    DEFAULT_DATA_DIR,
    hashtag,
    load_dataset,
    natural_key,
    parse_genres,
    split_dataset,
    top_genres,
)


def write_movielens(root: Path, ratings: list[tuple[str, str, float, int]], tags: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},{i},{r},{t}" for u, i, r, t in ratings]
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = {i for _, i, _, _ in ratings}
    rows = ["movieId,title,genres"]
    rows += [
        f'{i},"Film {i}, The (2001)",Comedy|Sci-Fi' if i != "m3" else f"{i},Film {i},(no genres listed)" for i in movies
    ]
    (root / "movies.csv").write_text("\n".join(rows) + "\n")
    if tags:
        (root / "tags.csv").write_text(
            "userId,movieId,tag,timestamp\n1,m1,Highly Quotable,5\n2,m1,funny,6\n2,m1,#Funny,7\n"
        )
    return root


def test_shipped_data_is_the_default() -> None:
    assert DEFAULT_DATA_DIR.name == "movielens-small"
    assert (DEFAULT_DATA_DIR / "ratings.csv").is_file()
    data = load_dataset(max_users=3)
    assert data.users == ["1", "2", "3"]
    assert all(isinstance(i, str) for i in data.items)
    assert data.items["1"].title == "Toy Story (1995)"
    assert data.items["1"].genres == ("adventure", "animation", "children", "comedy", "fantasy")
    assert data.n_interactions == sum(len(s) for s in data.sequences.values())


def test_parsing_rules() -> None:
    assert parse_genres("Action|Sci-Fi|Film-Noir") == ("action", "sci-fi", "film-noir")
    assert parse_genres("(no genres listed)") == ()
    assert hashtag("  Highly   Quotable ") == "highly-quotable"
    assert hashtag("#Funny") == "funny"
    assert sorted(["10", "9", "b", "a"], key=natural_key) == ["9", "10", "a", "b"]


def test_any_movielens_directory_with_optional_tags(tmp_path: Path) -> None:
    ratings = [("1", "m1", 4.0, 10), ("1", "m2", 3.0, 5), ("2", "m3", 5.0, 1), ("2", "m1", 2.0, 1)]
    data = load_dataset(write_movielens(tmp_path / "plain", ratings))
    assert data.name == "plain"
    assert data.items["m1"].tags == ()
    assert data.items["m3"].genres == ()
    assert data.items["m1"].text == "Film m1, The (2001)."
    tagged = load_dataset(write_movielens(tmp_path / "tagged", ratings, tags=True))
    assert tagged.items["m1"].tags == ("funny", "highly-quotable")
    assert tagged.items["m1"].text == "Film m1, The (2001). funny, highly-quotable"
    # time order, ties by item id
    assert [r.item_id for r in data.sequences["1"]] == ["m2", "m1"]
    assert [r.item_id for r in data.sequences["2"]] == ["m1", "m3"]


def test_split_is_time_ordered_without_leakage() -> None:
    data = load_dataset(max_users=30)
    split = split_dataset(data, holdout=5)
    for user, seq in data.sequences.items():
        train, val, test = split.train[user], split.validation.get(user, []), split.test.get(user, [])
        assert train + val + test == seq  # a partition in time order
        assert len(test) == 5 and len(val) == 5 and len(train) >= 3
        key = lambda r: (r.timestamp, natural_key(r.item_id))  # noqa: E731
        assert max(map(key, train)) <= min(map(key, val))
        assert max(map(key, val)) <= min(map(key, test))
        assert split.history(user, "validation") == [r.item_id for r in train]
        assert split.history(user, "test") == [r.item_id for r in train + val]
        assert not split.targets(user, "test") & set(split.history(user, "test"))
    assert split.counts()["test"] == 5 * len(data.sequences)


def test_short_users_keep_three_training_interactions(tmp_path: Path) -> None:
    ratings = [("a", f"m{i}", 4.0, i) for i in range(8)]  # 8: 3 train, 0 validation, 5 test
    ratings += [("b", f"m{i}", 4.0, i) for i in range(4)]  # 4: 3 train, 1 test
    ratings += [("c", f"m{i}", 4.0, i) for i in range(3)]  # 3: train only
    ratings += [("d", f"m{i}", 4.0, i) for i in range(11)]  # 11: 3 train, 3 validation, 5 test
    split = split_dataset(load_dataset(write_movielens(tmp_path, ratings)), holdout=5)
    sizes = {u: (len(split.train[u]), len(split.validation.get(u, [])), len(split.test.get(u, []))) for u in "abcd"}
    assert sizes == {"a": (3, 0, 5), "b": (3, 0, 1), "c": (3, 0, 0), "d": (3, 3, 5)}
    assert split.eval_users("test") == ["a", "b", "d"]
    assert split.eval_users("validation") == ["d"]
    with pytest.raises(ValueError):
        split_dataset(load_dataset(tmp_path), holdout=0)


def test_signup_interests_are_top_genres() -> None:
    data = load_dataset(max_users=1)
    history = [r.item_id for r in data.sequences["1"]]
    interests = top_genres(history, data.items)
    assert len(interests) == 3
    assert all(g == g.lower() for g in interests)
