"""The kit's page tokens and the SQLite write serialisation of `Database`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from creatormesh.common.database import Database
from creatormesh.common.errors import InvalidArgument
from creatormesh.common.paging import next_token, page


def test_pages_walk_and_reject_foreign_tokens() -> None:
    assert page(0, "", 50) == (0, 50)
    offset, limit = page(2, "", 50, {"user": "a"})
    token = next_token(offset, limit, 2, {"user": "a"})
    assert page(2, token, 50, {"user": "a"}) == (2, 2)
    assert next_token(2, 2, 1, {"user": "a"}) == ""  # a short page is the last
    for bad_token, filters in ((token, {"user": "b"}), ("garbage", {"user": "a"})):
        with pytest.raises(InvalidArgument) as caught:
            page(2, bad_token, 50, filters)
        assert caught.value.field == "page_token"
    with pytest.raises(InvalidArgument) as caught:
        page(201, "", 50, max_size=200)
    assert caught.value.field == "page_size" and "1..200" in caught.value.description


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "numbers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    writer: Mapped[str] = mapped_column(String(16))


def count_then_insert(db: Database, name: str) -> None:
    """Read the count, then insert count + 1: correct only if no one else writes in between."""
    with db.session() as s:
        n = int(s.scalar(select(func.count()).select_from(Row)) or 0)
        threading.Event().wait(0.01)
        s.add(Row(number=n + 1, writer=name))


@pytest.mark.parametrize("serialise", [True, False])
def test_sqlite_read_then_write(tmp_path: Path, serialise: bool) -> None:
    db = Database(f"sqlite:///{tmp_path}/t.db", serialise_sqlite=serialise)
    Base.metadata.create_all(db.engine)
    errors: list[Exception] = []

    def work(name: str) -> None:
        for _ in range(5):
            try:
                count_then_insert(db, name)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session() as s:
        numbers = sorted(s.scalars(select(Row.number)))
    db.close()
    if serialise:
        assert not errors and numbers == list(range(1, 21))
    else:  # deferred transactions interleave: duplicate numbers are refused, rows are lost
        assert errors and len(numbers) < 20
