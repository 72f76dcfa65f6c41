"""Training data: YouTube-trending CSVs (the shipped GB/CA files, or any directory in the same layout).

Required columns: video_id, title, channel_title, category_id, tags, views. Optional: publish_time,
description, likes, dislikes, comment_count (or comment_total), comments_disabled, ratings_disabled,
trending_date (yy.dd.mm) or date (dd.mm, 2017). A video in several files is kept once (first file by name).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from creatormesh.viral_scoring.items import Behaviour, Item, Kind

DEFAULT_DATA_DIR = Path(__file__).parent / "datasets" / "youtube-trending"
REQUIRED = ("video_id", "title", "channel_title", "category_id", "tags", "views")


@dataclass(frozen=True)
class Record:
    """One labelled video: the item (views are not in it) and what the labels are made from."""

    item: Item
    source: str  # file stem: percentiles are taken within a source
    snapshot: date | None  # trending day of the kept row
    views: int


def parse_tags(raw: str) -> tuple[str, ...]:
    """`a|"b c"|"d"` -> ("a", "b c", "d"); "[none]" -> ()."""
    if not raw or raw.strip() == "[none]":
        return ()
    tags = (t.strip().strip('"').strip() for t in raw.split("|"))
    return tuple(dict.fromkeys(t for t in tags if t))


def parse_time(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def parse_snapshot(row: dict[str, str]) -> date | None:
    try:
        if row.get("trending_date"):
            yy, dd, mm = row["trending_date"].split(".")
            return date(2000 + int(yy), int(mm), int(dd))
        if row.get("date"):
            dd, mm = row["date"].split(".")
            return date(2017, int(mm), int(dd))
    except ValueError:
        return None
    return None


def _count(row: dict[str, str], *names: str) -> int | None:
    for name in names:
        value = (row.get(name) or "").strip()
        if value:
            try:
                return max(0, int(float(value)))
            except ValueError:
                return None
    return None


def _flag(row: dict[str, str], name: str) -> bool:
    return (row.get(name) or "").strip().lower() == "true"


def record_from_row(row: dict[str, str], source: str) -> Record:
    ratings_off = _flag(row, "ratings_disabled")
    comments_off = _flag(row, "comments_disabled")
    category = (row.get("category_id") or "").strip()
    item = Item(
        id=row["video_id"],
        kind=Kind.VIDEO,
        title=row["title"].strip(),
        description=(row.get("description") or "").replace("\\n", "\n").strip(),
        tags=parse_tags(row.get("tags", "")),
        channel_title=row["channel_title"].strip(),
        category_id=int(category) if category.isdigit() else None,
        publish_time=parse_time(row.get("publish_time", "")),
        region=source[:2].upper() if source[:2].isalpha() else "",
        behaviour=Behaviour(
            likes=None if ratings_off else _count(row, "likes"),
            dislikes=None if ratings_off else _count(row, "dislikes"),
            comment_count=None if comments_off else _count(row, "comment_count", "comment_total"),
        ),
    )
    return Record(item=item, source=source, snapshot=parse_snapshot(row), views=_count(row, "views") or 0)


def load_dataset(data_dir: Path = DEFAULT_DATA_DIR) -> list[Record]:
    """Every *.csv in ``data_dir``; ValueError naming the file and the missing column."""
    files = sorted(Path(data_dir).glob("*.csv"))
    if not files:
        raise ValueError(f"no *.csv files in {data_dir}")
    records: dict[str, Record] = {}
    for path in files:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}")
            for row in reader:
                if row.get("video_id") and row["video_id"] not in records:
                    records[row["video_id"]] = record_from_row(row, path.stem)
    return list(records.values())
