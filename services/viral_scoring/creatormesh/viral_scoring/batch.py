"""Batch scoring from a CSV file: at least video_id, title, tags, channel_title, category_id; publish_time,
description, transcript and behavioural columns (likes, dislikes, comment_count or comment_total, shares, replays,
early_ctr, watch_through) are used when present. Writes video_id, V and the subscores."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm  # type: ignore[import-untyped]

from creatormesh.viral_scoring.data import parse_tags, parse_time
from creatormesh.viral_scoring.items import Behaviour, Item, Kind
from creatormesh.viral_scoring.scorer import Mode, Score, Scorer

REQUIRED = ("video_id", "title", "tags", "channel_title", "category_id")
OUTPUT = ("video_id", "v", "v_unpenalized", "E", "H", "R", "S", "T", "stage", "blocked", "penalty", "reasons")


def _int(row: dict[str, str], *names: str, line: int) -> int | None:
    for name in names:
        raw = (row.get(name) or "").strip()
        if raw:
            try:
                value = int(float(raw))
            except ValueError:
                raise ValueError(f"line {line}: {name} must be a number, got {raw!r}") from None
            if value < 0:
                raise ValueError(f"line {line}: {name} must be >= 0, got {raw!r}")
            return value
    return None


def _rate(row: dict[str, str], name: str, line: int) -> float | None:
    raw = (row.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"line {line}: {name} must be a number, got {raw!r}") from None
    if not 0 <= value <= 1:
        raise ValueError(f"line {line}: {name} must be in [0, 1], got {raw!r}")
    return value


def item_from_row(row: dict[str, str], line: int) -> Item:
    if not (row.get("video_id") or "").strip():
        raise ValueError(f"line {line}: video_id is required")
    category = (row.get("category_id") or "").strip()
    if category and not category.isdigit():
        raise ValueError(f"line {line}: category_id must be an integer, got {category!r}")
    return Item(
        id=row["video_id"].strip(),
        kind=Kind.VIDEO,
        title=(row.get("title") or "").strip(),
        description=(row.get("description") or "").replace("\\n", "\n").strip(),
        tags=parse_tags(row.get("tags") or ""),
        transcript=(row.get("transcript") or "").strip(),
        channel_title=(row.get("channel_title") or "").strip(),
        category_id=int(category) if category else None,
        publish_time=parse_time((row.get("publish_time") or "").strip()),
        behaviour=Behaviour(
            likes=_int(row, "likes", line=line),
            dislikes=_int(row, "dislikes", line=line),
            comment_count=_int(row, "comment_count", "comment_total", line=line),
            shares=_int(row, "shares", line=line),
            replays=_int(row, "replays", line=line),
            early_ctr=_rate(row, "early_ctr", line),
            watch_through=_rate(row, "watch_through", line),
        ),
    )


def read_items(path: Path) -> list[Item]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}")
        return [item_from_row(row, line) for line, row in enumerate(reader, start=2)]


def _rows(scores: list[Score]) -> Iterator[list[str]]:
    for s in scores:
        yield [
            s.content_id, f"{s.v:.6f}", f"{s.v_unpenalized:.6f}", *(f"{x:.6f}" for x in s.subscores), s.stage.value,
            str(s.safety.blocked).lower(), f"{s.safety.penalty:.3f}", "; ".join(s.safety.reasons),
        ]  # fmt: skip


def score_csv(
    scorer: Scorer, src: Path, dst: Path, mode: Mode = Mode.FULL, chunk: int = 256, progress: bool = True
) -> int:
    """Score every row of ``src`` into ``dst``; the number of rows written."""
    items = read_items(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT)
        bar = tqdm(total=len(items), desc="score", unit="item", disable=not progress)
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            writer.writerows(_rows(scorer.score(part, mode)))
            bar.update(len(part))
        bar.close()
    return len(items)
