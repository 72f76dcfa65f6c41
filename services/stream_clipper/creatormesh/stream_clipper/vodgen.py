"""Labelled test VODs for detection quality: calm talk, loud keyword highlights with a cut, and decoys.

A VOD is an H.264/AAC MP4 whose audio is mixed with numpy (noise, espeak-ng speech, synthetic music) at known
offsets and whose picture is lavfi sources that change only at the hard cut inside each highlight. The labels
(every segment with its kind and spoken text) go to a JSON sidecar. The same seed gives the same labels.

Levels (dBFS, as `audio.window_rms`): background noise ~ -44, calm speech ~ -30, highlights and music decoys
peak at ~ -14 (+-1.5 per segment), so loudness alone cannot tell a highlight from music.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from creatormesh.common.media import ffmpeg_exe

KINDS = ("calm", "highlight", "decoy_music", "decoy_quiet_speech")
SAMPLE_RATE = 16000
SOURCES = ("testsrc2", "smptebars", "color=c=0x1f5fa0", "rgbtestsrc", "pal100bars", "color=c=0xa0401f", "testsrc")
"""lavfi video sources used in turn; the picture changes only at highlight cuts."""
HYPE_LINES = (
    "oh my god, no way!",
    "let's go! that was insane!",
    "clutch! clutch! unbelievable!",
    "no way, what a headshot!",
    "that was insane, oh my god!",
    "let's go, what a comeback!",
)
CALM_LINES = (
    "okay so we go to the left side now",
    "let me check the map for a second",
    "thanks for the follow, welcome in",
    "we need a little more wood here",
    "alright, back to the base",
    "I think we go up the stairs",
    "hmm, where did I put the key",
    "so today we try the new route",
)
BACKGROUND_DB = -44.0
CALM_SPEECH_DB = -30.0
LOUD_DB = -14.0
LOUD_JITTER_DB = 1.5
EXCITED_SPEEDUP = 1.12
WINDOW_S = (8.0, 15.0)
MIN_CALM_S = 10.0
_FADE_S = 0.2


@dataclass(frozen=True)
class Segment:
    """A labelled stretch [start, end) in seconds, its kind (see KINDS) and the words spoken in it."""

    start: float
    end: float
    kind: str
    text: str = ""


@dataclass(frozen=True)
class LabelledVod:
    """A generated VOD, its segments (covering the whole duration, in order) and its JSON labels file."""

    path: Path
    duration_s: float
    segments: tuple[Segment, ...]
    labels_path: Path
    cuts: tuple[float, ...] = ()

    @property
    def highlights(self) -> list[tuple[float, float]]:
        """(start, end) of the highlight segments."""
        return [(s.start, s.end) for s in self.segments if s.kind == "highlight"]


def _amp(db: float) -> float:
    """RMS amplitude of a level in dBFS (0 dBFS = RMS of a full-scale sine)."""
    return float(10.0 ** (db / 20.0) / np.sqrt(2.0))


def _at_rms(x: np.ndarray, db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return x * (_amp(db) / rms) if rms > 0 else x


def _fade(x: np.ndarray) -> np.ndarray:
    n = min(int(_FADE_S * SAMPLE_RATE), x.size // 2)
    env = np.ones(x.size)
    env[:n] = np.linspace(0.0, 1.0, n)
    env[x.size - n :] = np.linspace(1.0, 0.0, n)
    return x * env


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise with a 1/f-ish spectrum, shaped in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1.0))
    return np.fft.irfft(spec, n)


def _crowd(rng: np.random.Generator, n: int) -> np.ndarray:
    """Cheering-like noise: band-limited noise swelling irregularly a few times a second."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spec *= np.exp(-0.5 * ((freqs - 1200.0) / 900.0) ** 2)
    t = np.arange(n) / SAMPLE_RATE
    swell = 0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t + rng.uniform(0, 6)) ** 2
    return np.fft.irfft(spec, n) * swell


def _music(rng: np.random.Generator, n: int) -> np.ndarray:
    """Loud music-like audio: saw-ish chords changing every 2 s, a kick every beat, hi-hats between."""
    t = np.arange(n) / SAMPLE_RATE
    roots = rng.choice([110.0, 130.8, 146.8, 164.8, 196.0], size=int(n / SAMPLE_RATE / 2) + 1)
    root = roots[(t // 2.0).astype(int)]
    x = np.zeros(n)
    for ratio in (1.0, 1.26, 1.5):
        for k in range(1, 6):
            x += np.sin(2 * np.pi * root * ratio * k * t) / k
    beat = 60.0 / rng.uniform(100, 140)
    phase = t % beat
    x += 4.0 * np.sin(2 * np.pi * 55.0 * phase) * np.exp(-phase * 18.0)
    hat = ((t + beat / 2) % beat) < 0.04
    x += 1.5 * rng.standard_normal(n) * hat
    return x


def _speech(text: str, cache: dict[str, np.ndarray], workdir: Path) -> np.ndarray:
    """espeak-ng speech of `text` as float samples at SAMPLE_RATE (cached per text)."""
    if text not in cache:
        from creatormesh.common.sample_media import make_speech

        wav = make_speech(workdir / f"speech{len(cache)}.wav", text, sample_rate=SAMPLE_RATE)
        with wave.open(str(wav), "rb") as f:
            pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        cache[text] = pcm.astype(np.float64) / 32768.0
    return cache[text]


def _excited(x: np.ndarray) -> np.ndarray:
    """Faster and higher (resampled by EXCITED_SPEEDUP)."""
    idx = np.arange(0.0, x.size - 1, EXCITED_SPEEDUP)
    out: np.ndarray = np.interp(idx, np.arange(x.size), x)
    return out


def _layout(rng: np.random.Generator, seconds: float, kinds: list[str]) -> list[tuple[float, float, str]]:
    """Non-overlapping windows of WINDOW_S length with >= MIN_CALM_S of calm around each (times to 0.1 s)."""
    lengths = rng.uniform(*WINDOW_S, size=len(kinds))
    room = seconds - MIN_CALM_S * (len(kinds) + 1)
    if room < WINDOW_S[0] * len(kinds):
        raise ValueError(f"{seconds:g} s is too short for {len(kinds)} windows")
    if lengths.sum() > room:
        lengths = WINDOW_S[0] + (lengths - WINDOW_S[0]) * (room - WINDOW_S[0] * len(kinds)) / (
            lengths.sum() - WINDOW_S[0] * len(kinds)
        )
    lengths = np.floor(lengths * 10 + 1e-6) / 10
    slack = rng.dirichlet(np.ones(len(kinds) + 1)) * (room - lengths.sum())
    out: list[tuple[float, float, str]] = []
    t = 0.0
    for kind, length, extra in zip(kinds, lengths, slack[:-1], strict=True):
        start = round(t + MIN_CALM_S + float(np.floor(extra * 10)) / 10, 1)
        out.append((start, round(start + float(length), 1), kind))
        t = out[-1][1]
    return out


def _place_lines(
    rng: np.random.Generator, pool: tuple[str, ...], start: float, end: float, speak: dict[str, np.ndarray], gap: float
) -> list[tuple[float, str]]:
    """(offset, line) of lines from `pool` that fit in [start, end) with pauses of ~`gap` seconds."""
    placed: list[tuple[float, str]] = []
    t = start + rng.uniform(0.3, 1.0)
    for line in rng.permutation(pool):
        length = speak[str(line)].size / SAMPLE_RATE
        if t + length > end - 0.3:
            break
        placed.append((t, str(line)))
        t += length + rng.uniform(0.5, 1.0) * gap
    return placed


def _add(mix: np.ndarray, at: float, x: np.ndarray) -> None:
    i = round(at * SAMPLE_RATE)
    n = min(x.size, mix.size - i)
    mix[i : i + n] += x[:n]


def _segment_audio(
    rng: np.random.Generator, kind: str, start: float, end: float, lines: dict[str, np.ndarray]
) -> tuple[np.ndarray, str]:
    """Audio of a highlight/decoy window (to add on top of the background) and the text spoken in it."""
    n = round((end - start) * SAMPLE_RATE)
    if kind == "decoy_music":
        return _fade(_at_rms(_music(rng, n), 0.0)), ""
    calm = kind == "decoy_quiet_speech"
    voice = {k: (v if calm else _excited(v)) for k, v in lines.items()}
    placed = _place_lines(rng, HYPE_LINES, 0.0, end - start, voice, gap=1.0 if calm else 0.4)
    x = np.zeros(n) if calm else _at_rms(_crowd(rng, n), CALM_SPEECH_DB)
    for at, line in placed:
        _add(x, at, _at_rms(voice[line], CALM_SPEECH_DB + (0.0 if calm else 6.0)))
    return _fade(x), " ".join(line for _, line in placed)


def _peak_window_rms(x: np.ndarray) -> float:
    win, hop = SAMPLE_RATE, SAMPLE_RATE // 2
    sq = np.square(x)
    means = [sq[i : i + win].mean() for i in range(0, max(1, x.size - win + 1), hop)]
    return float(10 * np.log10(max(float(np.max(means)), 1e-12) * 2.0))


def _mix(
    rng: np.random.Generator, seconds: float, windows: list[tuple[float, float, str]], workdir: Path
) -> tuple[np.ndarray, list[Segment]]:
    """The whole soundtrack and its segments (calm stretches filled in between the windows)."""
    cache: dict[str, np.ndarray] = {}
    lines = {line: _speech(line, cache, workdir) for line in HYPE_LINES + CALM_LINES}
    mix = _at_rms(_pink(rng, round(seconds * SAMPLE_RATE)), BACKGROUND_DB)
    segments: list[Segment] = []
    edges = [0.0, *[t for a, b, _ in windows for t in (a, b)], seconds]
    for i, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
        placed = _place_lines(rng, CALM_LINES, a, b, lines, gap=5.0)
        for at, line in placed:
            _add(mix, at, _at_rms(lines[line], CALM_SPEECH_DB))
        segments.append(Segment(a, b, "calm", " ".join(line for _, line in placed)))
        if i < len(windows):
            start, end, kind = windows[i]
            audio, text = _segment_audio(rng, kind, start, end, {k: lines[k] for k in HYPE_LINES})
            if kind != "decoy_quiet_speech":
                audio *= 10 ** ((LOUD_DB + rng.uniform(-LOUD_JITTER_DB, LOUD_JITTER_DB) - _peak_window_rms(audio)) / 20)
            _add(mix, start, audio)
            segments.append(Segment(start, end, kind, text))
    return np.clip(mix, -1.0, 1.0), segments


def _write_wav(path: Path, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes((x * 32767.0).astype("<i2").tobytes())


def _mux(out: Path, wav: Path, seconds: float, cuts: list[float], size: tuple[int, int], fps: int) -> None:
    edges = [0.0, *cuts, seconds]
    args: list[str] = []
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        src = SOURCES[i % len(SOURCES)]
        sep = ":" if "=" in src else "="
        args += ["-f", "lavfi", "-t", f"{b - a:.3f}", "-i", f"{src}{sep}size={size[0]}x{size[1]}:rate={fps}"]
    k = len(edges) - 1
    chains = "".join(f"[{i}:v]format=yuv420p,setsar=1[v{i}];" for i in range(k))
    graph = f"{chains}{''.join(f'[v{i}]' for i in range(k))}concat=n={k}:v=1:a=0[v]"
    args += ["-i", str(wav), "-filter_complex", graph, "-map", "[v]", "-map", f"{k}:a"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-pix_fmt", "yuv420p", "-r", str(fps)]
    args += ["-c:a", "aac", "-b:a", "64k", "-t", f"{seconds:.3f}", "-movflags", "+faststart", str(out)]
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-800:]}")


def make_vod(
    out: Path,
    *,
    seconds: float = 180.0,
    highlights: int = 4,
    decoys: int = 3,
    seed: int = 0,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
) -> LabelledVod:
    """Generate a labelled VOD at `out` (MP4) with its labels next to it (`<stem>.labels.json`).

    Decoys alternate loud music (no speech, no cut) and keyword speech at calm level. Each highlight is loud
    excited keyword speech over crowd noise with a hard picture cut inside. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    kinds = ["highlight"] * highlights + ["decoy_music" if i % 2 == 0 else "decoy_quiet_speech" for i in range(decoys)]
    windows = _layout(rng, seconds, [str(k) for k in rng.permutation(kinds)])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vodgen-") as tmp:
        audio, segments = _mix(rng, seconds, windows, Path(tmp))
        cuts = [round((a + (b - a) * rng.uniform(0.35, 0.65)) * fps) / fps for a, b, k in windows if k == "highlight"]
        wav = Path(tmp) / "audio.wav"
        _write_wav(wav, audio)
        _mux(out, wav, seconds, cuts, size, fps)
    labels = out.with_suffix(".labels.json")
    vod = LabelledVod(out, float(seconds), tuple(segments), labels, tuple(cuts))
    body = {
        "version": 1,
        "video": out.name,
        "duration_s": vod.duration_s,
        "seed": seed,
        "cuts": list(vod.cuts),
        "segments": [{"start": s.start, "end": s.end, "kind": s.kind, "text": s.text} for s in segments],
    }
    labels.write_text(json.dumps(body, indent=1), encoding="utf-8")
    return vod


def load_labels(path: Path) -> LabelledVod:
    """A LabelledVod from its JSON labels file (the video is found next to it)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    segments = tuple(
        Segment(float(s["start"]), float(s["end"]), str(s["kind"]), str(s.get("text", ""))) for s in data["segments"]
    )
    if any(s.kind not in KINDS for s in segments):
        raise ValueError(f"{path}: unknown segment kind")
    cuts = tuple(float(c) for c in data.get("cuts", ()))
    return LabelledVod(Path(path).parent / data["video"], float(data["duration_s"]), segments, Path(path), cuts)
