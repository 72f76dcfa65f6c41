"""What the scorer sees: a content item with every modality optional (domain types, no transport)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class Kind(StrEnum):
    UNKNOWN = "unknown"
    VIDEO = "video"
    CLIP = "clip"
    SCRIPT = "script"
    GENERATED_VIDEO = "generated_video"


@dataclass(frozen=True)
class Behaviour:
    """Engagement observed so far; None = unknown (not zero)."""

    views: int | None = None
    likes: int | None = None
    dislikes: int | None = None
    comment_count: int | None = None
    shares: int | None = None
    replays: int | None = None
    early_ctr: float | None = None
    watch_through: float | None = None
    observed_after_hours: float | None = None

    def present(self) -> bool:
        """True when any signal other than views is known (views are the label, never an input)."""
        return any(
            v is not None
            for v in (
                self.likes,
                self.dislikes,
                self.comment_count,
                self.shares,
                self.replays,
                self.early_ctr,
                self.watch_through,
            )
        )


def local_file(uri: str) -> Path | None:
    """The path of a local path or file:// URI; None for an empty or remote URI (remote media is not fetched)."""
    if not uri or ("://" in uri and not uri.startswith("file://")):
        return None
    return Path(uri.removeprefix("file://"))


@dataclass(frozen=True)
class Media:
    video: Path | None = None
    audio: Path | None = None
    keyframes: tuple[bytes | Path, ...] = ()
    duration_seconds: float | None = None


@dataclass(frozen=True)
class Item:
    id: str
    kind: Kind = Kind.UNKNOWN
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    transcript: str = ""
    creator_id: str = ""
    channel_title: str = ""
    category_id: int | None = None
    publish_time: datetime | None = None  # timezone-aware
    region: str = ""
    language: str = ""
    media: Media = field(default_factory=Media)
    behaviour: Behaviour = field(default_factory=Behaviour)

    @property
    def text(self) -> str:
        """Everything written about the item, title first."""
        return "\n".join(p for p in (self.title, self.transcript, self.description) if p)
