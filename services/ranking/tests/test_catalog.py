from creatormesh.ranking.catalog import Catalog, ItemMeta
from creatormesh.ranking.recommender import ItemContent


def item(item_id: str, genres: tuple[str, ...], quality: float | None, **kw: object) -> ItemMeta:
    return ItemMeta(ItemContent(item_id, genres=genres, quality=quality), **kw)  # type: ignore[arg-type]


def test_best_for_takes_turns_between_interests_and_thresholds_quality() -> None:
    c = Catalog()
    c.upsert([item(f"g{i}", ("gaming",), 0.9 - i / 100) for i in range(10)])
    c.upsert([item(f"m{i}", ("music",), 0.8 - i / 100) for i in range(10)])
    c.upsert([item("low", ("music",), 0.1)])
    got = c.best_for(["gaming", "music"], 6, min_quality=0.3)
    assert got == ["g0", "m0", "g1", "m1", "g2", "m2"]
    assert "low" not in c.best_for(["music"], 50, min_quality=0.3)
    assert c.best_for(["music"], 50, min_quality=0.0)[-1] == "low"
    assert c.best_for(["unknown-interest"], 2) == ["g0", "g1"]  # no match: the best overall
    assert "g0" not in c.best_for(["gaming"], 3, exclude={"g0"})


def test_upsert_replaces_and_blocked_items_are_never_offered() -> None:
    c = Catalog()
    c.upsert([item("a", ("x",), 0.9), item("b", ("x",), 0.5)])
    c.upsert([item("a", ("y",), 0.2)])
    assert c.best_for(["x"], 5) == ["b"]
    assert c.best_for(["y"], 5) == ["a"]
    c.upsert([item("b", ("x",), 0.0, blocked=True)])
    assert c.best_for(["x"], 5) == []
    assert "b" not in c.best_for([], 5)
    assert len(c) == 2


def test_request_fields_override_known_ones() -> None:
    known = ItemMeta(ItemContent("a", genres=("comedy",), quality=0.7, text="known"), "creator-1", 100.0)
    given = ItemMeta(ItemContent("a", quality=0.2))
    merged = given.merged_over(known)
    assert merged.content.genres == ("comedy",)
    assert merged.quality == 0.2
    assert (merged.creator_id, merged.published_at) == ("creator-1", 100.0)
    assert ItemMeta(ItemContent("n")).quality == 0.5
