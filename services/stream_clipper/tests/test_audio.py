"""decode_pcm / window_rms / silences on a real WAV made by ffmpeg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creatormesh.common.media import DecodeError
from creatormesh.stream_clipper.audio import FLOOR_DB, decode_pcm, silences, window_rms

SECONDS = 60.0


def test_decode_pcm_is_mono_float32_at_the_asked_rate(burst_wav: Path) -> None:
    pcm = decode_pcm(burst_wav)
    assert pcm.dtype == np.float32
    assert pcm.ndim == 1
    assert abs(pcm.size / 16000 - SECONDS) < 0.05
    assert float(np.abs(pcm).max()) <= 1.0
    assert abs(decode_pcm(burst_wav, sample_rate=8000).size / 8000 - SECONDS) < 0.05


def test_decode_pcm_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="could not decode"):
        decode_pcm(tmp_path / "nope.wav")


def test_rms_peaks_where_the_bursts_are(burst_wav: Path, bursts: tuple[tuple[float, float], ...]) -> None:
    rms = window_rms(decode_pcm(burst_wav), 16000, window_s=1.0, hop_s=0.5)
    assert rms.size == int((SECONDS - 1.0) / 0.5) + 1
    times = np.arange(rms.size) * 0.5
    inside = np.zeros(rms.size, dtype=bool)
    for a, b in bursts:
        inside |= (times >= a) & (times + 1.0 <= b)
    outside = np.ones(rms.size, dtype=bool)
    for a, b in bursts:
        outside &= (times + 1.5 <= a) | (times >= b + 0.5)  # lavfi frames blur the edges by ~64 ms
    assert rms[inside].min() > rms[outside].max() + 20.0
    assert 10.0 <= times[int(np.argmax(rms))] <= 13.0  # the first burst is the louder one


def test_window_rms_levels_in_dbfs() -> None:
    sr = 16000
    t = np.arange(sr * 2) / sr
    full_sine = np.sin(2 * np.pi * 440 * t)
    assert np.allclose(window_rms(full_sine, sr), 0.0, atol=0.05)
    assert np.allclose(window_rms(0.1 * full_sine, sr), -20.0, atol=0.05)
    assert np.all(window_rms(np.zeros(sr * 2), sr) == FLOOR_DB)
    assert window_rms(np.zeros(0), sr).size == 0
    assert window_rms(np.ones(100), sr).size == 1


def test_silences_are_runs_below_threshold() -> None:
    rms = np.array([-60, -60, -10, -10, -60, -10, -60, -60], dtype=np.float32)
    assert silences(rms, -30.0) == [(0.0, 1.0), (2.0, 2.5), (3.0, 4.0)]
    assert silences(rms, -30.0, hop_s=1.0) == [(0.0, 2.0), (4.0, 5.0), (6.0, 8.0)]
    assert silences(np.zeros(0), -30.0) == []


def test_silences_of_real_audio_surround_the_bursts(burst_wav: Path) -> None:
    rms = window_rms(decode_pcm(burst_wav), 16000)
    quiet = silences(rms, float(np.percentile(rms, 10)) + 6.0)
    assert len(quiet) == 3
    assert quiet[0][0] == 0.0
    assert abs(quiet[0][1] - 10.0) <= 1.0 and abs(quiet[1][0] - 14.0) <= 1.0
    assert abs(quiet[1][1] - 40.0) <= 1.0 and abs(quiet[2][0] - 44.0) <= 1.0
