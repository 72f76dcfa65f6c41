"""A short test VOD: quiet noise with loud keyword speech at known times, over a video with a cut."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np

from creatormesh.common.media import decode_pcm, ffmpeg_exe
from creatormesh.common.sample_media import make_speech, make_video

RATE = 16000
LINES = ("oh my god no way, let's go, that was insane", "what a clutch play, unbelievable, let's go")


def speech_vod(path: Path, *, seconds: float = 40.0, at: tuple[float, ...] = (10.0, 28.0), cuts: int = 1) -> Path:
    """An MP4 (320x180, H.264/AAC) of quiet noise with loud speech lines starting at ``at`` seconds."""
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(int(seconds * RATE)) * 0.003).astype(np.float32)
    for i, start in enumerate(at):
        wav = make_speech(path.parent / f"{path.stem}-line{i}.wav", LINES[i % len(LINES)])
        line = decode_pcm(wav, RATE)
        line = line / max(float(np.abs(line).max()), 1e-6) * 0.8
        a = int(start * RATE)
        audio[a : a + line.size] += line[: max(audio.size - a, 0)]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    wav_path = path.with_suffix(".wav")
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    video = make_video(path.with_suffix(".video.mp4"), seconds=seconds, size=(320, 180), with_audio=False, cuts=cuts)
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(video), "-i", str(wav_path)]
    cmd += ["-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-shortest", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path
