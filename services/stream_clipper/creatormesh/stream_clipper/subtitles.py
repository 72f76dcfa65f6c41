"""Burned-in subtitles: an ASS document from word timestamps, short lines with the spoken word highlighted.

Times in the document are relative to the clip start (the renderer seeks with `-ss` before `-i`, so the clip's
first frame is at 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from creatormesh.stream_clipper.highlights import Word

if TYPE_CHECKING:
    from creatormesh.stream_clipper.render import RenderConfig

MAX_WORDS_PER_LINE = 4
MAX_CHARS_PER_LINE = 24
PAUSE_SPLIT_S = 0.6
TEXT_COLOUR = "&H00FFFFFF"
"""Style colour of the words not being spoken (white, ASS &HAABBGGRR)."""

_WORD_JOINER = "\u2060"


def escape_ass_text(text: str) -> str:
    """Text safe inside a Dialogue line: braces escaped for libass, a backslash followed by an invisible word
    joiner (so it never starts a `\\N`-style escape), line breaks turned into spaces."""
    out: list[str] = []
    for ch in " ".join(text.split()):
        if ch == "\\":
            out.append("\\" + _WORD_JOINER)
        elif ch in "{}":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def ass_time(seconds: float) -> str:
    """H:MM:SS.cc, the ASS time format (centiseconds)."""
    cs = max(0, round(seconds * 100))
    hours, rest = divmod(cs, 360_000)
    minutes, rest = divmod(rest, 6_000)
    secs, cs = divmod(rest, 100)
    return f"{hours}:{minutes:02d}:{secs:02d}.{cs:02d}"


def override_colour(colour: str) -> str:
    """`\\c` override value (&HBBGGRR&) of an ASS colour given as &HAABBGGRR or &HBBGGRR."""
    digits = colour.strip().removeprefix("&H").removeprefix("&h").rstrip("&")
    return f"&H{digits[-6:].upper().rjust(6, '0')}&"


def group_lines(words: Sequence[Word]) -> list[list[Word]]:
    """Words in order, split into lines of at most 4 words / 24 characters, and at pauses longer than 0.6 s."""
    lines: list[list[Word]] = []
    for word in words:
        line = lines[-1] if lines else None
        if (
            line is None
            or len(line) >= MAX_WORDS_PER_LINE
            or word.start - line[-1].end > PAUSE_SPLIT_S
            or sum(len(w.text) + 1 for w in line) + len(word.text) > MAX_CHARS_PER_LINE
        ):
            lines.append([word])
        else:
            line.append(word)
    return lines


def _header(cfg: RenderConfig) -> str:
    side = round(cfg.width * 0.1)
    fields = (
        "Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
        "MarginL, MarginR, MarginV, Encoding"
    )
    style = (
        f"Default,{cfg.font_name},{cfg.font_size},{TEXT_COLOUR},{TEXT_COLOUR},&H00000000,&H80000000,"
        f"-1,0,0,0,100,100,0,0,1,4,1,2,{side},{side},{cfg.margin_v},1"
    )
    return (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {cfg.width}\nPlayResY: {cfg.height}\nWrapStyle: 0\nScaledBorderAndShadow: yes\n\n"
        f"[V4+ Styles]\nFormat: {fields}\nStyle: {style}\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )


def ass_subtitles(words: Sequence[Word], clip_start: float, clip_end: float, cfg: RenderConfig) -> str:
    """ASS document for the clip [clip_start, clip_end] (source seconds): one Dialogue event per word showing its
    line with that word in `cfg.highlight_colour`, times relative to the clip start and clamped to the clip."""
    duration = max(0.0, clip_end - clip_start)
    shown = sorted(
        (w for w in words if w.text.strip() and w.end > clip_start and w.start < clip_end), key=lambda w: w.start
    )
    hl = override_colour(cfg.highlight_colour)
    normal = override_colour(TEXT_COLOUR)
    events: list[str] = []
    for line in group_lines(shown):
        texts = [escape_ass_text(w.text) for w in line]
        for i, word in enumerate(line):
            until = line[i + 1].start if i + 1 < len(line) else word.end
            start = min(max(word.start - clip_start, 0.0), duration)
            end = min(max(until - clip_start, 0.0), duration)
            if round(end * 100) <= round(start * 100):
                continue
            text = " ".join(f"{{\\c{hl}}}{t}{{\\c{normal}}}" if j == i else t for j, t in enumerate(texts))
            events.append(f"Dialogue: 0,{ass_time(start)},{ass_time(end)},Default,,0,0,0,,{text}\n")
    return _header(cfg) + "".join(events)
