"""`creatormesh clipper ...` through typer's CliRunner: the service runs in-process on a database, work dir and
storage in tmp_path (configured with environment variables), TikTok is the local fake, Redis is real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from creatormesh.common.sample_media import make_video
from creatormesh.stream_clipper.cli import app

from .media import speech_vod
from .tiktok_fake import FakeTikTok, FakeTikTokServer

INIT = "/v2/post/publish/video/init/"


@pytest.fixture(scope="module")
def vod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 s with one loud speech line at 6 s."""
    return speech_vod(tmp_path_factory.mktemp("clivod") / "cli.mp4", seconds=16.0, at=(6.0,))


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1 s 9:16 mp4 to upload."""
    return make_video(tmp_path_factory.mktemp("cliclip") / "clip.mp4", seconds=1.0, size=(180, 320))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, unique: str) -> None:
    """The service's configuration: everything under tmp_path, the test Redis, a private Redis prefix, no bus."""
    settings = {
        "CREATORMESH_STREAM_CLIPPER_DATABASE_URL": f"sqlite:///{tmp_path / 'clipper.db'}",
        "CREATORMESH_STREAM_CLIPPER_WORK_DIR": str(tmp_path / "work"),
        "CREATORMESH_STREAM_CLIPPER_STORAGE": str(tmp_path / "media"),
        "CREATORMESH_STREAM_CLIPPER_REDIS_PREFIX": f"cli-test-{unique}",
        "CREATORMESH_REDIS_URL": redis_url,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("CREATORMESH_KAFKA_BOOTSTRAP", "CREATORMESH_STREAM_CLIPPER_TIKTOK_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTikTok]:
    """The TikTok fake, configured as the service's TikTok (seed refresh token rt-1)."""
    with FakeTikTokServer() as tiktok:
        tiktok.statuses = ["PUBLISH_COMPLETE"]
        for name, value in {
            "TIKTOK_CLIENT_KEY": tiktok.client_key, "TIKTOK_CLIENT_SECRET": tiktok.client_secret,
            "TIKTOK_API_URL": tiktok.url, "TIKTOK_REFRESH_TOKEN": "rt-1",
        }.items():  # fmt: skip
            monkeypatch.setenv(f"CREATORMESH_STREAM_CLIPPER_{name}", value)
        yield tiktok


def run(*args: Any) -> Result:
    """Invoke `creatormesh clipper <args>`."""
    return CliRunner().invoke(app, [str(a) for a in args])


def test_process_dry_run_prints_a_clip_line(env: None, vod: Path) -> None:
    result = run("process", vod, "--streamer", "x", "--dry-run", "--no-render", "--max-clips", 1,
                 "--min-duration", 4, "--max-duration", 8)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("clip ")]
    assert len(lines) == 1, result.output
    assert " cut " in lines[0] and "score" in lines[0]
    start = float(lines[0].split(": ", 1)[1].split("-", 1)[0])
    assert abs(start - 6.0) < 6, lines[0]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--max-clips", "0"], "--max-clips"),
        (["--max-clips", "99"], "--max-clips"),
        (["--min-duration", "0.5"], "options.min_duration_seconds"),
        (["--min-duration", "20", "--max-duration", "10"], "options.max_duration_seconds"),
        (["--language", "english"], "options.language"),
    ],
)
def test_process_rejects_bad_options_naming_the_field(
    env: None, vod: Path, options: list[str], named: str, tmp_path: Path
) -> None:
    result = run("process", vod, "--streamer", "x", "--dry-run", *options)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert not (tmp_path / "clipper.db").exists(), "nothing ran"


def test_process_a_missing_file_fails_with_its_name(env: None, tmp_path: Path) -> None:
    result = run("process", tmp_path / "nope.mp4", "--streamer", "x", "--dry-run", "--no-render")
    assert result.exit_code != 0
    assert "failed" in result.stderr and "nope.mp4" in result.stderr


def test_make_vod_writes_the_video_and_labels(tmp_path: Path) -> None:
    out = tmp_path / "gen" / "vod.mp4"
    result = run("make-vod", out, "--seconds", 30, "--highlights", 1, "--decoys", 0, "--seed", 2)
    assert result.exit_code == 0, result.output
    labels = out.with_suffix(".labels.json")
    assert out.stat().st_size > 10_000 and labels.is_file()
    assert str(labels) in result.stdout and " highlight " in result.stdout
    assert "highlight" in labels.read_text()


def test_upload_publishes_through_the_fake(fake: FakeTikTok, clip_file: Path) -> None:
    result = run("upload", "--file", clip_file, "--streamer", "x", "--strategy", "file_upload")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "PUBLISHED" and outcome["post_url"].endswith(str(fake.post_id))
    assert fake.count(INIT) == 1 and fake.inits[0]["post_info"]["title"] == "#x #clips"
    (uploaded,) = fake.uploads.values()
    assert bytes(uploaded) == clip_file.read_bytes()
    assert fake.refreshes[0]["refresh_token"] == "rt-1", "the seed refresh token was used"


def test_upload_of_a_missing_file_fails(fake: FakeTikTok, tmp_path: Path) -> None:
    result = run("upload", "--file", tmp_path / "none.mp4", "--streamer", "x")
    assert result.exit_code == 2 and "none.mp4" in result.stderr and "is not a file" in result.stderr
    assert fake.count(INIT) == 0


def test_diagnose_shows_sandbox_and_backoff_and_clear_resets_sandbox(fake: FakeTikTok, clip_file: Path) -> None:
    before = run("tiktok-diagnose")
    assert before.exit_code == 0, before.output
    state = json.loads(before.stdout)
    assert state["sandbox"] is False and state["backoff"]["failures"] == 0
    assert state["creator_info"]["creator_username"] == fake.username
    assert state["token"]["present"] and state["token"]["refreshable"], "the seed refresh token, not yet used"

    fake.sandbox = True  # an unaudited app: the public post is refused, the retry goes SELF_ONLY
    sandboxed = json.loads(run("upload", "--file", clip_file, "--streamer", "x").stdout)
    assert sandboxed["status"] == "PUBLISHED" and sandboxed["sandbox"] is True
    assert [i["post_info"]["privacy_level"] for i in fake.inits] == ["PUBLIC_TO_EVERYONE", "SELF_ONLY"]

    fake.rate_limit_init = 1  # one 429: `upload` does not wait, it returns PENDING with the backoff
    pending = run("upload", "--file", clip_file, "--streamer", "x")
    assert pending.exit_code == 0 and json.loads(pending.stdout)["status"] == "PENDING"

    state = json.loads(run("tiktok-diagnose").stdout)
    assert state["sandbox"] is True and state["token"]["valid"] is True
    assert state["backoff"]["failures"] == 1 and state["backoff"]["remaining_s"] > 30

    cleared = run("tiktok-clear-sandbox-state")
    assert cleared.exit_code == 0 and "sandbox state cleared" in cleared.stdout
    state = json.loads(run("tiktok-diagnose").stdout)
    assert state["sandbox"] is False and state["backoff"]["failures"] == 1


def test_tiktok_commands_need_tiktok_settings(env: None) -> None:
    for command in ("tiktok-diagnose", "tiktok-clear-sandbox-state"):
        result = run(command)
        assert result.exit_code == 2 and "TikTok is not configured" in result.stderr, result.output
