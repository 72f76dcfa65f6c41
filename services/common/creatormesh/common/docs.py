"""`python -m creatormesh.common.docs README.md`: rewrite the generated
configuration table between the config-table markers."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from creatormesh.common.cli import settings_classes
from creatormesh.common.settings import markdown_table

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def update(path: Path) -> bool:
    text = path.read_text()
    new = re.sub(
        re.escape(START) + r".*?" + re.escape(END),
        lambda _: f"{START}\n{markdown_table(settings_classes())}\n{END}",
        text,
        flags=re.S,
    )
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    changed = update(Path(sys.argv[1]))
    print(f"{sys.argv[1]}: {'updated' if changed else 'already current'}")
