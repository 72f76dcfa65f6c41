"""A/B arms: the seed's `x-use-overdrive` toggle, else deterministic bucketing of the user id.

The same user in the same experiment always lands in the same arm (on every replica, across
restarts), and experiments are bucketed independently of each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

OVERDRIVE = "overdrive"
CONTROL = "control"
HEADER = "header"
BUCKET = "bucket"
_ON = {"1", "true", "on", "yes", OVERDRIVE}
_OFF = {"0", "false", "off", "no", CONTROL}


@dataclass(frozen=True)
class Arm:
    name: str  # OVERDRIVE or CONTROL
    source: str  # HEADER or BUCKET


def bucket_value(user_id: str, experiment: str) -> float:
    """A stable number in [0, 1) for (experiment, user)."""
    digest = hashlib.sha256(f"{experiment}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def parse_toggle(value: str | None) -> str | None:
    """The arm forced by an `x-use-overdrive` value, None when absent; ValueError when unreadable."""
    if value is None or value.strip() == "":
        return None
    v = value.strip().lower()
    if v in _ON:
        return OVERDRIVE
    if v in _OFF:
        return CONTROL
    raise ValueError(f"x-use-overdrive must be 1/0/true/false, got {value!r}")


def choose_arm(user_id: str, experiment: str, overdrive_share: float, toggle: str | None = None) -> Arm:
    forced = parse_toggle(toggle)
    if forced is not None:
        return Arm(forced, HEADER)
    return Arm(OVERDRIVE if bucket_value(user_id, experiment) < overdrive_share else CONTROL, BUCKET)
