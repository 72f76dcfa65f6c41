"""Real test media made with the imageio-ffmpeg binary: quiet noise with loud bursts at known times."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from creatormesh.common.media import ffmpeg_exe

SECONDS = 60.0
BURSTS: tuple[tuple[float, float], ...] = ((10.0, 14.0), (40.0, 44.0))
"""(start, end) seconds of the loud bursts in `burst_wav`."""


def make_burst_wav(path: Path, bursts: tuple[tuple[float, float], ...], gains: tuple[float, ...]) -> Path:
    """A mono 16 kHz WAV of quiet pink noise where each burst is the noise turned up by its gain."""
    chain = ",".join(
        f"volume=volume={gain}:enable='between(t,{a},{b})'" for (a, b), gain in zip(bursts, gains, strict=True)
    )
    spec = f"anoisesrc=color=pink:amplitude=0.02:sample_rate=16000:seed=7:duration={SECONDS},{chain}"
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", spec]
    subprocess.run([*cmd, "-ac", "1", "-ar", "16000", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def bursts() -> tuple[tuple[float, float], ...]:
    """(start, end) seconds of the bursts in burst_wav / even_burst_wav."""
    return BURSTS


@pytest.fixture(scope="session")
def burst_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of quiet noise, bursts at 10-14 s (x25) and 40-44 s (x20)."""
    return make_burst_wav(tmp_path_factory.mktemp("media") / "bursts.wav", BURSTS, (25.0, 20.0))


@pytest.fixture(scope="session")
def even_burst_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same bursts, equally loud (x20), so only other signals can rank them."""
    return make_burst_wav(tmp_path_factory.mktemp("media") / "even.wav", BURSTS, (20.0, 20.0))
