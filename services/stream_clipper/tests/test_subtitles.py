"""ASS documents from word timestamps: grouping, relative times, highlight overrides, escaping; rendered by libass."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import av
import numpy as np

from creatormesh.common.media import ffmpeg_exe
from creatormesh.stream_clipper.highlights import Word
from creatormesh.stream_clipper.render import RenderConfig, default_font_dir, filter_path
from creatormesh.stream_clipper.subtitles import ass_subtitles, ass_time, escape_ass_text, group_lines

CFG = RenderConfig()
HL = r"{\c&H00FFFF&}"


def dialogues(doc: str) -> list[tuple[str, str, str]]:
    """(start, end, text) of every Dialogue line."""
    out = []
    for line in doc.splitlines():
        if line.startswith("Dialogue:"):
            fields = line.removeprefix("Dialogue: ").split(",", 9)
            out.append((fields[1], fields[2], fields[9]))
    return out


def test_header_has_play_resolution_and_bottom_safe_margin() -> None:
    doc = ass_subtitles([], 0.0, 5.0, CFG)
    assert "PlayResX: 1080\nPlayResY: 1920\n" in doc
    style = next(line for line in doc.splitlines() if line.startswith("Style: "))
    assert style.split(",")[1:3] == ["DejaVu Sans", "64"]
    assert style.endswith(",2,108,108,360,1")  # bottom centre, side margins, margin_v
    assert dialogues(doc) == []


def test_times_are_relative_to_the_clip_start_and_clamped() -> None:
    words = [Word("early", 9.0, 10.3), Word("one", 10.5, 10.9), Word("two", 11.0, 11.4), Word("late", 11.8, 13.0)]
    events = dialogues(ass_subtitles(words, 10.0, 12.0, CFG))
    assert [(s, e) for s, e, _ in events] == [
        ("0:00:00.00", "0:00:00.50"),  # started before the clip; held until the next word starts
        ("0:00:00.50", "0:00:01.00"),
        ("0:00:01.00", "0:00:01.80"),
        ("0:00:01.80", "0:00:02.00"),  # clamped to the clip end
    ]
    assert dialogues(ass_subtitles([Word("outside", 20.0, 21.0)], 10.0, 12.0, CFG)) == []


def test_each_word_is_highlighted_in_its_own_event() -> None:
    words = [Word("we", 0.0, 0.2), Word("are", 0.3, 0.5), Word("live", 0.6, 0.9)]
    texts = [t for _, _, t in dialogues(ass_subtitles(words, 0.0, 5.0, CFG))]
    assert texts == [
        f"{HL}we{{\\c&HFFFFFF&}} are live",
        f"we {HL}are{{\\c&HFFFFFF&}} live",
        f"we are {HL}live{{\\c&HFFFFFF&}}",
    ]
    red = RenderConfig(highlight_colour="&H000000FF")
    assert r"{\c&H0000FF&}we" in ass_subtitles(words, 0.0, 5.0, red)


def test_lines_split_at_four_words_and_at_pauses() -> None:
    words = [Word(f"w{i}", i * 0.3, i * 0.3 + 0.2) for i in range(6)] + [Word("after", 3.0, 3.3)]
    assert [[w.text for w in line] for line in group_lines(words)] == [
        ["w0", "w1", "w2", "w3"],
        ["w4", "w5"],
        ["after"],
    ]
    long = [Word("extraordinarily", 0.0, 0.5), Word("uncharacteristically", 0.6, 1.0)]
    assert len(group_lines(long)) == 2
    texts = [t for _, _, t in dialogues(ass_subtitles(words, 0.0, 5.0, CFG))]
    assert texts[4].endswith("w5") and "w3" not in texts[4] and texts[6] == f"{HL}after{{\\c&HFFFFFF&}}"


def test_word_text_is_escaped() -> None:
    assert escape_ass_text("{\\b1}bold") == "\\{\\\u2060b1\\}bold"
    assert escape_ass_text("a\\Nb\nc") == "a\\\u2060Nb c"
    doc = ass_subtitles([Word("{\\i1}x\ny", 0.0, 1.0)], 0.0, 2.0, CFG)
    ((_, _, text),) = dialogues(doc)
    assert re.sub(r"\{\\c&H[0-9A-F]{6}&\}", "", text) == "\\{\\\u2060i1\\}x y"
    assert "\n" not in text


def test_ass_time_format() -> None:
    assert ass_time(0.0) == "0:00:00.00"
    assert ass_time(3723.456) == "1:02:03.46"
    assert ass_time(-1.0) == "0:00:00.00"


def test_libass_renders_the_document(tmp_path: Path) -> None:
    cfg = RenderConfig(width=320, height=180, font_size=28, margin_v=20)
    ass = tmp_path / "s.ass"
    ass.write_text(ass_subtitles([Word("{hi}", 0.0, 0.5), Word("there", 0.5, 1.0)], 0.0, 1.0, cfg), encoding="utf-8")
    out = tmp_path / "f.png"
    vf = f"ass=filename={filter_path(ass)}:fontsdir={filter_path(default_font_dir())}"
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=320x180:d=1"]
    subprocess.run([*cmd, "-vf", vf, "-ss", "0.2", "-frames:v", "1", str(out)], check=True)
    with av.open(str(out)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    yellow = (img[:, :, 0] > 200) & (img[:, :, 1] > 200) & (img[:, :, 2] < 80)
    white = (img > 200).all(axis=2)
    assert yellow.sum() > 50 and white.sum() > 50
    rows = np.nonzero(yellow.any(axis=1))[0]
    assert rows.max() < 180 - 20 and rows.min() > 90  # bottom, above the safe margin
