"""AIP-158 pagination for List RPCs: an opaque page token that carries the next offset and the filters it was
issued for (a token reused with other filters is rejected, not silently misapplied)."""

from __future__ import annotations

import base64
import json

from creatormesh.common.errors import InvalidArgument, require


def page(
    size: int, token: str, default: int, filters: dict[str, str] | None = None, max_size: int = 500
) -> tuple[int, int]:
    """(offset, limit) of the requested page; InvalidArgument naming page_size or page_token."""
    filters = filters or {}
    require(0 <= size <= max_size, "page_size", f"must be in 1..{max_size} (0 = {default})")
    if not token:
        return 0, size or default
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, seen = int(data["o"]), data["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("page_token", "is not a token this server issued") from exc
    require(seen == filters, "page_token", "was issued for different filters")
    require(offset >= 0, "page_token", "is not a token this server issued")
    return offset, size or default


def next_token(offset: int, limit: int, got: int, filters: dict[str, str] | None = None) -> str:
    """The token of the page after one that returned ``got`` items; empty when it was the last."""
    if got < limit:
        return ""
    return base64.urlsafe_b64encode(json.dumps({"o": offset + got, "f": filters or {}}).encode()).decode()
