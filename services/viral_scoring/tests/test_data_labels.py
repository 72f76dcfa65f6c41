"""The shipped data, the labels and the channel-grouped split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creatormesh.viral_scoring.data import DEFAULT_DATA_DIR, load_dataset, parse_tags
from creatormesh.viral_scoring.labels import make_labels, percentile
from creatormesh.viral_scoring.prepare_data import split_by_channel
from creatormesh.viral_scoring.trends import TrendWindow


def test_shipped_data_loads_once_per_video_with_its_licence() -> None:
    records = load_dataset()
    assert len(records) > 1500
    assert len({r.item.id for r in records}) == len(records)
    assert (DEFAULT_DATA_DIR / "NOTICE.md").read_text().count("CC0") >= 1
    assert all(r.item.behaviour.views is None for r in records)  # views are the label, never an input
    assert sum(r.item.publish_time is not None for r in records) > 800


def test_tags_are_parsed_from_the_youtube_format() -> None:
    assert parse_tags('a|"b c"|"d"|"a"') == ("a", "b c", "d")
    assert parse_tags("[none]") == ()


def test_labels_are_percentiles_with_unknown_proxies_masked() -> None:
    records = load_dataset()[:300]
    labels = make_labels(records)
    assert labels.y.min() == 0.0 and labels.y.max() == 1.0
    known = ~np.isnan(labels.sub)
    assert known[:, 2].all() and known[:, 4].all()  # R and T always defined
    no_time = np.array([r.item.publish_time is None for r in records])
    assert np.isnan(labels.sub[no_time, 1]).all()  # H needs a publish time
    assert np.nanmin(labels.sub) >= 0 and np.nanmax(labels.sub) <= 1
    assert np.isnan(percentile(np.array([np.nan, 1.0, 2.0])))[0]


def test_split_keeps_each_channel_on_one_side() -> None:
    records = load_dataset()
    channels = [r.item.channel_title for r in records]
    rest, test = split_by_channel(channels, 0.2)
    assert 0.1 < len(test) / len(records) < 0.3
    assert not {channels[i] for i in rest} & {channels[i] for i in test}
    again = split_by_channel(channels, 0.2)
    assert (again[1] == test).all()


def test_missing_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("video_id,title\nabc,hello\n")
    with pytest.raises(ValueError, match=r"missing column.*channel_title"):
        load_dataset(tmp_path)


def test_trend_window_counts_other_creators_and_forgets_old_content() -> None:
    window = TrendWindow(window_seconds=100)
    window.add("a", ["#Dance", "fail"], at=0)
    window.add("b", ["dance"], at=50)
    assert window.strengths(["dance", "fail", "new"], exclude_creator="a") == [1, 0, 0]
    window.add("c", ["other"], at=120)  # a's content (t=0) is now out of the window
    assert window.strengths(["dance", "fail"]) == [1, 0]
