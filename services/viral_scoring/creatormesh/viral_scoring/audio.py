"""Audio measurements of a post's soundtrack (librosa + numpy), for the ViralScore audio modality.

The audio track of any audio or video file is decoded to mono float32 PCM by the ffmpeg of imageio-ffmpeg (piped to
numpy), at most `max_seconds`. Frames are 1024 samples (64 ms at 16 kHz) with a hop of 256. Features, in order:

- mfcc_mean_0..12: mean of 13 MFCCs (librosa), c0 as (c0 + 300) / 300, the others / 50.
- mfcc_std_0..4: std of the first 5 MFCCs / 100.
- loudness: mean RMS in dBFS mapped so -60 dB -> 0 and 0 dB -> 1 (clipped to [0, 1]).
- energy_variation: std / mean of frame RMS (coefficient of variation) / 3, clipped to [0, 1].
- hook_energy: RMS dB of the first 3 s minus the rest, / 20, clipped to [-1, 1]; 0 for clips of 3 s or less.
- silence_fraction: share of frames quieter than -45 dBFS.
- tempo: librosa.feature.tempo (bpm) / 200; 0 for silence.
- onset_rate: onsets per second (librosa.onset.onset_detect) / 5, clipped to [0, 2].
- voiced_fraction: share of frames that are periodic (normalised autocorrelation peak >= 0.5 at a lag in
  65..500 Hz) and louder than -45 dBFS.
- pitch_variance: robust std (1.4826 x median absolute deviation, so octave slips don't dominate) in semitones
  of f0 over voiced frames / 12, clipped to [0, 1]; 0 with fewer than 3 voiced frames.
- pitch_level: median f0 of voiced frames in semitones relative to 200 Hz / 24; 0 with fewer than 3 voiced.
- spectral_centroid: mean centroid / Nyquist.
- spectral_flatness: mean flatness (0 tonal .. 1 noise).
- zero_crossing_rate: mean zero-crossing rate.
- duration: log1p(seconds) / 5.

Pitch: librosa.yin/pyin JIT-compile with numba on the first call in a process (measured here: 7-50 s for yin,
3.4 s per 15 s clip for pyin even when warm), so f0 and voicing come from a vectorised numpy normalised
autocorrelation (Boersma's window-corrected method, the shortest-lag peak within 90 % of the highest to avoid
octave errors, parabolic peak interpolation) over all frames at once. librosa itself costs ~2-5 s to import once
per process (scipy + numba); a warm 15 s clip takes ~0.2-0.6 s here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

N_MFCC = 13
N_MFCC_STD = 5
FRAME = 1024
HOP = 256
FMIN = 65.0
FMAX = 500.0
SILENCE_DB = -45.0
VOICING = 0.5
OCTAVE_RATIO = 0.9
HOOK_SECONDS = 3.0

AUDIO_NAMES: tuple[str, ...] = (
    *(f"mfcc_mean_{i}" for i in range(N_MFCC)),
    *(f"mfcc_std_{i}" for i in range(N_MFCC_STD)),
    "loudness",
    "energy_variation",
    "hook_energy",
    "silence_fraction",
    "tempo",
    "onset_rate",
    "voiced_fraction",
    "pitch_variance",
    "pitch_level",
    "spectral_centroid",
    "spectral_flatness",
    "zero_crossing_rate",
    "duration",
)
AUDIO_DIM: int = len(AUDIO_NAMES)


def decode_audio(path: Path, *, max_seconds: float = 60.0, sample_rate: int = 16000) -> np.ndarray | None:
    """Mono float32 PCM of the file's first audio stream, or None when it has none or cannot be decoded."""
    from creatormesh.common.media import DecodeError, decode_pcm

    try:
        return decode_pcm(path, sample_rate, max_seconds=max_seconds, timeout=120)
    except DecodeError as exc:
        log.warning("no decodable audio: %s", exc)
        return None


def audio_features(path: Path, *, max_seconds: float = 60.0, sample_rate: int = 16000) -> np.ndarray | None:
    """float32 [AUDIO_DIM] measurements of the file's audio track; None when there is no usable audio."""
    samples = decode_audio(path, max_seconds=max_seconds, sample_rate=sample_rate)
    if samples is None:
        return None
    if samples.size < FRAME:
        log.warning("audio of %s is empty or shorter than one frame (%d samples)", path, samples.size)
        return None
    return pcm_features(samples, sample_rate)


def _db(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(20.0 * np.log10(np.maximum(x, 1e-6)))


def _pitch(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and periodicity (0..1) per frame; frames is [n, FRAME]."""
    window = np.hanning(FRAME).astype(np.float64)
    x = (frames - frames.mean(axis=1, keepdims=True)) * window
    nfft = 2 * FRAME
    acf = np.fft.irfft(np.abs(np.fft.rfft(x, n=nfft, axis=1)) ** 2, n=nfft, axis=1)[:, :FRAME]
    wacf = np.fft.irfft(np.abs(np.fft.rfft(window, n=nfft)) ** 2, n=nfft)[:FRAME]
    lo, hi = int(sample_rate / FMAX), min(int(sample_rate / FMIN), FRAME // 2)
    energy = np.maximum(acf[:, :1], 1e-12)
    norm = acf[:, lo - 1 : hi + 2] / energy / (wacf[lo - 1 : hi + 2] / wacf[0])
    inner = norm[:, 1:-1]
    peaks = (inner > norm[:, :-2]) & (inner >= norm[:, 2:])
    strong = peaks & (inner >= OCTAVE_RATIO * inner.max(axis=1, keepdims=True))
    best = np.where(strong.any(axis=1), np.argmax(strong, axis=1), np.argmax(inner, axis=1)) + 1
    rows = np.arange(norm.shape[0])
    left, mid, right = norm[rows, best - 1], norm[rows, best], norm[rows, best + 1]
    denom = left - 2 * mid + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    lag = best + (lo - 1) + shift
    periodicity = np.clip(mid - 0.25 * (left - right) * shift, 0.0, 1.0)
    return sample_rate / lag, periodicity


def pcm_features(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The AUDIO_NAMES vector of mono PCM (float, about [-1, 1]) at `sample_rate`."""
    import librosa

    y = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
    if y.size < FRAME:
        y = np.pad(y, (0, FRAME - y.size))
    y = np.nan_to_num(y)
    seconds = y.size / sample_rate

    mfcc = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=N_MFCC, n_fft=FRAME, hop_length=HOP)
    mfcc_mean = mfcc.mean(axis=1)
    mfcc_mean_scaled = np.concatenate([[(mfcc_mean[0] + 300.0) / 300.0], mfcc_mean[1:] / 50.0])
    mfcc_std = mfcc[:N_MFCC_STD].std(axis=1) / 100.0

    rms = librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP)[0]
    rms_db = _db(rms)
    loud = float(np.clip((_db(float(rms.mean())) + 60.0) / 60.0, 0.0, 1.0))
    variation = float(np.clip(rms.std() / max(float(rms.mean()), 1e-6) / 3.0, 0.0, 1.0))
    hook_frames = int(HOOK_SECONDS * sample_rate / HOP)
    hook = 0.0
    if seconds > HOOK_SECONDS and rms.size > hook_frames + 1:
        first, rest = float(rms[:hook_frames].mean()), float(rms[hook_frames:].mean())
        hook = float(np.clip((_db(first) - _db(rest)) / 20.0, -1.0, 1.0))
    loud_frames = rms_db > SILENCE_DB
    silence = float(1.0 - loud_frames.mean())

    onset_env = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=HOP)
    tempo = 0.0
    if loud_frames.any() and float(onset_env.max()) > 0:
        bpm = librosa.feature.tempo(onset_envelope=onset_env, sr=sample_rate, hop_length=HOP)
        tempo = float(np.asarray(bpm).reshape(-1)[0]) / 200.0
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sample_rate, hop_length=HOP)
    onset_rate = float(np.clip(len(onsets) / seconds / 5.0, 0.0, 2.0)) if loud_frames.any() else 0.0

    frames = librosa.util.frame(np.pad(y, FRAME // 2), frame_length=FRAME, hop_length=HOP).T.astype(np.float64)
    f0, periodicity = _pitch(frames, sample_rate)
    n = min(f0.size, rms_db.size)
    voiced = (periodicity[:n] >= VOICING) & loud_frames[:n]
    voiced_fraction = float(voiced.mean()) if n else 0.0
    semitones = 12.0 * np.log2(f0[:n][voiced] / 200.0)
    pitch_var, pitch_level = 0.0, 0.0
    if semitones.size >= 3:
        median = float(np.median(semitones))
        spread = 1.4826 * float(np.median(np.abs(semitones - median)))
        pitch_var, pitch_level = float(np.clip(spread / 12.0, 0.0, 1.0)), float(np.clip(median / 24.0, -1.0, 1.0))

    centroid = librosa.feature.spectral_centroid(y=y, sr=sample_rate, n_fft=FRAME, hop_length=HOP)[0]
    flatness = librosa.feature.spectral_flatness(y=y, n_fft=FRAME, hop_length=HOP)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=FRAME, hop_length=HOP)[0]

    vector = np.concatenate(
        [
            mfcc_mean_scaled,
            mfcc_std,
            [loud, variation, hook, silence, tempo, onset_rate, voiced_fraction, pitch_var, pitch_level],
            [float(centroid.mean()) / (sample_rate / 2), float(flatness.mean()), float(zcr.mean())],
            [np.log1p(seconds) / 5.0],
        ]
    )
    return np.asarray(np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0), dtype=np.float32)
