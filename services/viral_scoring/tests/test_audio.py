"""Audio features on real media: espeak-ng speech, ffmpeg tones/noise/silence and videos (sample_media)."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np
import pytest

from creatormesh.common.sample_media import make_audio, make_speech, make_video
from creatormesh.viral_scoring.audio import AUDIO_DIM, AUDIO_NAMES, audio_features, decode_audio, pcm_features

SPEECH = (
    "Stop scrolling! Did you know that three simple habits can change your mornings? "
    "First, drink water. Second, open the curtains. Third, move for five minutes. Would you try it?"
)


def idx(name: str) -> int:
    return AUDIO_NAMES.index(name)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    make_speech(root / "speech.wav", SPEECH)
    for source in ("sine", "noise", "silence"):
        make_audio(root / f"{source}.wav", source=source, seconds=4.0)
    make_video(root / "with_audio.mp4", seconds=3.0)
    make_video(root / "silent_video.mp4", seconds=2.0, with_audio=False)
    return root


@pytest.fixture(scope="module")
def vectors(media: Path) -> dict[str, np.ndarray]:
    out = {}
    for name in ("speech", "sine", "noise", "silence"):
        vec = audio_features(media / f"{name}.wav")
        assert vec is not None, name
        out[name] = vec
    return out


def test_speech_is_real_speech(media: Path) -> None:
    with wave.open(str(media / "speech.wav")) as wav:
        assert wav.getframerate() == 16000 and wav.getnchannels() == 1
        seconds = wav.getnframes() / wav.getframerate()
    assert 4.0 < seconds < 30.0


def test_vectors_are_finite_with_audio_dim(vectors: dict[str, np.ndarray]) -> None:
    assert AUDIO_DIM == len(AUDIO_NAMES) == len(set(AUDIO_NAMES))
    assert 24 <= AUDIO_DIM <= 32
    for vec in vectors.values():
        assert vec.shape == (AUDIO_DIM,) and vec.dtype == np.float32
        assert np.isfinite(vec).all()
        assert np.abs(vec).max() < 5.0


def test_speech_has_pitch_movement_a_sine_has_none(vectors: dict[str, np.ndarray]) -> None:
    speech, sine = vectors["speech"], vectors["sine"]
    assert speech[idx("pitch_variance")] > sine[idx("pitch_variance")] + 0.03
    assert sine[idx("pitch_variance")] < 0.01
    assert 0.3 < speech[idx("voiced_fraction")] < 0.95
    assert sine[idx("voiced_fraction")] > 0.95
    # 440 Hz is 13.65 semitones above 200 Hz
    assert sine[idx("pitch_level")] == pytest.approx(12 * np.log2(440 / 200) / 24, abs=0.01)
    assert speech[idx("onset_rate")] > sine[idx("onset_rate")]
    assert speech[idx("energy_variation")] > sine[idx("energy_variation")]


def test_silence_versus_noise(vectors: dict[str, np.ndarray]) -> None:
    silence, noise = vectors["silence"], vectors["noise"]
    assert silence[idx("loudness")] == 0.0 and silence[idx("silence_fraction")] == 1.0
    assert noise[idx("loudness")] > 0.5 and noise[idx("silence_fraction")] == 0.0
    assert noise[idx("voiced_fraction")] < 0.05  # white noise is aperiodic
    assert noise[idx("spectral_flatness")] > 0.3 > vectors["sine"][idx("spectral_flatness")]
    assert noise[idx("zero_crossing_rate")] > vectors["speech"][idx("zero_crossing_rate")]


def test_hook_energy_sees_a_loud_start() -> None:
    sr = 16000
    t = np.arange(sr * 6) / sr
    tone = 0.5 * np.sin(2 * np.pi * 220 * t).astype(np.float32)
    loud_start = tone * np.where(t < 3.0, 1.0, 0.05).astype(np.float32)
    quiet_start = tone * np.where(t < 3.0, 0.05, 1.0).astype(np.float32)
    assert pcm_features(loud_start, sr)[idx("hook_energy")] > 0.5
    assert pcm_features(quiet_start, sr)[idx("hook_energy")] < -0.5
    assert pcm_features(tone, sr)[idx("hook_energy")] == pytest.approx(0.0, abs=0.02)


def test_video_with_audio_track(media: Path) -> None:
    vec = audio_features(media / "with_audio.mp4")
    assert vec is not None and vec.shape == (AUDIO_DIM,) and np.isfinite(vec).all()
    assert vec[idx("pitch_level")] == pytest.approx(12 * np.log2(440 / 200) / 24, abs=0.01)  # the 440 Hz track
    assert vec[idx("duration")] == pytest.approx(np.log1p(3.0) / 5, abs=0.02)


def test_no_audio_is_none(media: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"not audio at all" * 64)
    empty = tmp_path / "empty.wav"
    make_audio(empty, source="sine", seconds=0.01)
    with caplog.at_level(logging.WARNING):
        assert audio_features(media / "silent_video.mp4") is None
        assert audio_features(garbage) is None
        assert audio_features(tmp_path / "missing.wav") is None
        assert audio_features(empty) is None
    assert len(caplog.records) >= 4


def test_max_seconds_and_sample_rate(media: Path) -> None:
    pcm = decode_audio(media / "speech.wav", max_seconds=1.0, sample_rate=8000)
    assert pcm is not None and pcm.dtype == np.float32 and abs(pcm.size - 8000) <= 16
    vec = audio_features(media / "speech.wav", max_seconds=2.0, sample_rate=22050)
    assert vec is not None and vec[idx("duration")] == pytest.approx(np.log1p(2.0) / 5, abs=0.01)
