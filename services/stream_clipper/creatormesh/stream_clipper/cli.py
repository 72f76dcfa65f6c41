"""`creatormesh clipper ...`: the seed's commands (monitor, process, upload, upload-when-ready, tiktok-diagnose,
tiktok-clear-sandbox-state) plus the labelled-VOD generator and the detection-quality evaluation.

The commands run the service's own code in this process (no server needed): a VOD job here is the same job the
gRPC ProcessVod runs, saved in the same database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from creatormesh.stream_clipper.app import StreamClipperService

app = typer.Typer(help="Stream clipper: process VODs, monitor Kick, publish to TikTok, evaluate detection.")
Strategy = Annotated[str, typer.Option(help="MULTIPART, FILE_UPLOAD or PULL_FROM_URL.")]


@asynccontextmanager
async def _service() -> AsyncIterator[StreamClipperService]:
    from creatormesh.common.server import build_runtime
    from creatormesh.common.settings import KitSettings, load
    from creatormesh.stream_clipper.app import StreamClipperService

    service = StreamClipperService(build_runtime(load(KitSettings), "stream_clipper"))
    await service.load()
    try:
        yield service
    finally:
        await service.close()


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def process(
    source: Annotated[str, typer.Argument(help="Local file, file://, http(s):// or s3:// URI of the VOD.")],
    streamer: Annotated[str, typer.Option(help="Streamer name (the clips' creator).")],
    dry_run: Annotated[bool, typer.Option(help="Detect, cut and render; publish nothing, emit no events.")] = False,
    max_clips: Annotated[int, typer.Option(min=1, max=50, help="Clips per VOD (1..50).")] = 3,
    min_duration: Annotated[float, typer.Option(help="Shortest clip, seconds.")] = 15.0,
    max_duration: Annotated[float, typer.Option(help="Longest clip, seconds.")] = 60.0,
    language: Annotated[str, typer.Option(help="ISO 639-1 language (empty: engine default).")] = "",
    chat_log: Annotated[str, typer.Option(help="JSON-lines chat log for the chat-velocity score.")] = "",
    render: Annotated[bool, typer.Option(help="Render 9:16 clips with subtitles.")] = True,
    publish: Annotated[bool, typer.Option(help="Publish clips whose viral score clears the threshold.")] = False,
    stream_id: Annotated[str, typer.Option(help="Stream id (default: derived from the source).")] = "",
) -> None:
    """Process a VOD: find highlights, transcribe, cut and render clips (progress bar; one line per clip)."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from creatormesh.common.errors import DomainError
    from creatormesh.stream_clipper.servicer import vod_request
    from creatormesh.stream_clipper.v1 import stream_clipper_pb2 as pb

    request = pb.ProcessVodRequest(
        request_id=uuid.uuid4().hex, source_uri=source, streamer=streamer, stream_id=stream_id, dry_run=dry_run,
        options=pb.ClipOptions(
            max_clips=max_clips, min_duration_seconds=min_duration, max_duration_seconds=max_duration,
            language=language, chat_log_uri=chat_log, render=render, publish=publish,
        ),
    )  # fmt: skip
    try:
        spec = vod_request(request)
    except DomainError as exc:
        _fail(f"invalid input: {exc}")

    async def run() -> str:
        error = ""
        async with _service() as service:
            with tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {n:.0f}/{total}% [{elapsed}]") as bar:
                async for p in service.process_vod(**spec):
                    bar.set_description(p.stage.name.lower())
                    bar.update(p.fraction * 100 - bar.n)
                    if p.clip is not None:
                        c = p.clip
                        tqdm.write(
                            f"clip {c.clip_id}: {c.start_s:.1f}-{c.end_s:.1f} s score {c.score.total:.2f} "
                            f"(energy {c.score.energy:.2f}, keywords {c.score.keywords:.2f}, scene {c.score.scene:.2f},"
                            f" chat {c.score.chat:.2f}) {c.status.name.lower()} "
                            f"{c.rendered_media_uri or c.source_media_uri or c.error}"
                        )
                    error = p.error or error
        return error

    error = asyncio.run(run())
    if error:
        _fail(f"failed: {error}")


@app.command()
def monitor(
    channel: Annotated[list[str], typer.Option(help="Kick channel slug to monitor (repeatable).")],
    chunk_seconds: Annotated[int, typer.Option(help="Recording chunk length (10..600 s).")] = 60,
) -> None:
    """Monitor Kick channels until Ctrl+C: record live streams in chunks and clip every chunk."""
    from creatormesh.common.errors import DomainError
    from creatormesh.stream_clipper.records import Options
    from creatormesh.stream_clipper.servicer import slug

    async def run() -> None:
        async with _service() as service:
            for name in channel:
                await service.start_monitoring(slug(name), chunk_seconds, Options())
            typer.echo(f"monitoring {', '.join(channel)} (Ctrl+C stops after the current chunk)")
            seen: dict[str, tuple[Any, ...]] = {}
            while True:
                for c in await service.list_channels(0, 1000):
                    state = (c.state.name, c.stream_id, c.chunks_recorded, c.clips_created, c.error)
                    if seen.get(c.slug) != state:
                        seen[c.slug] = state
                        line = f"{c.slug}: {state[0].lower()} stream={c.stream_id or '-'}"
                        typer.echo(f"{line} chunks={c.chunks_recorded} clips={c.clips_created} {c.error}")
                await asyncio.sleep(2.0)

    try:
        asyncio.run(run())
    except DomainError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("stopped")


def _publisher_call(fn: str, **kwargs: Any) -> Any:
    async def run() -> Any:
        async with _service() as service:
            publisher = service.publisher.publisher
            if publisher is None:
                _fail("TikTok is not configured: set CREATORMESH_STREAM_CLIPPER_TIKTOK_CLIENT_KEY/_SECRET")
            await service.publisher.bootstrap_token()
            return await getattr(publisher, fn)(**kwargs)

    return asyncio.run(run())


def _upload(file: Path, streamer: str, strategy: str, caption: str, wait: bool, max_wait: float) -> None:
    if not file.is_file():
        _fail(f"--file {file} is not a file")
    outcome = _publisher_call(
        "publish", path=file, caption=caption or f"#{streamer} #clips", strategy=strategy.upper(),
        wait_when_rate_limited=wait, max_wait_s=max_wait,
    )  # fmt: skip
    typer.echo(json.dumps(outcome.__dict__, indent=2, default=str))
    if outcome.status == "FAILED":
        raise typer.Exit(1)


@app.command()
def upload(
    file: Annotated[Path, typer.Option(help="Rendered clip (MP4).")],
    streamer: Annotated[str, typer.Option(help="Streamer, for the caption.")],
    strategy: Strategy = "MULTIPART",
    caption: Annotated[str, typer.Option(help="Post caption.")] = "",
) -> None:
    """Upload a rendered clip to TikTok once (returns PENDING when rate-limited)."""
    _upload(file, streamer, strategy, caption, wait=False, max_wait=0.0)


@app.command("upload-when-ready")
def upload_when_ready(
    file: Annotated[Path, typer.Option(help="Rendered clip (MP4).")],
    streamer: Annotated[str, typer.Option(help="Streamer, for the caption.")],
    strategy: Strategy = "MULTIPART",
    caption: Annotated[str, typer.Option(help="Post caption.")] = "",
    max_wait_seconds: Annotated[float, typer.Option(help="Longest wait for a rate-limit backoff.")] = 2400.0,
) -> None:
    """Upload, waiting out rate-limit backoffs (up to --max-wait-seconds)."""
    _upload(file, streamer, strategy, caption, wait=True, max_wait=max_wait_seconds)


@app.command("tiktok-diagnose")
def tiktok_diagnose() -> None:
    """Token state, creator info, sandbox state and backoff of the TikTok account."""
    typer.echo(json.dumps(_publisher_call("diagnose"), indent=2, default=str))


@app.command("tiktok-clear-sandbox-state")
def tiktok_clear_sandbox_state() -> None:
    """Forget the remembered sandbox state (after the app passed TikTok's audit)."""
    _publisher_call("clear_sandbox_state")
    typer.echo("sandbox state cleared")


@app.command("make-vod")
def make_vod(
    out: Annotated[Path, typer.Argument(help="Output MP4 (a .json label file is written beside it).")],
    seconds: Annotated[float, typer.Option(help="Length of the VOD.")] = 180.0,
    highlights: Annotated[int, typer.Option(help="Labelled highlight windows.")] = 4,
    decoys: Annotated[int, typer.Option(help="Decoys: loud music without speech, quiet keyword speech.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Generate a labelled test VOD (ffmpeg + espeak-ng) for the detection-quality evaluation."""
    from creatormesh.stream_clipper.vodgen import make_vod as generate

    vod = generate(out, seconds=seconds, highlights=highlights, decoys=decoys, seed=seed)
    typer.echo(f"{vod.path} ({vod.duration_s:.0f} s), labels {vod.labels_path}")
    for s in vod.segments:
        if s.kind != "calm":
            typer.echo(f"  {s.start:6.1f}-{s.end:6.1f} s {s.kind} {s.text}")


@app.command()
def evaluate(
    out_dir: Annotated[Path, typer.Option(help="Where the generated VODs go (reused when present).")] = Path(
        "build/clipper-eval"
    ),
    vods: Annotated[int, typer.Option(help="How many labelled VODs (seeds 0..N-1).")] = 3,
    seconds: Annotated[float, typer.Option(help="Length of each VOD.")] = 180.0,
) -> None:
    """Precision/recall of the found windows against the labels: RMS only, RMS + keywords, the full scorer."""
    from creatormesh.stream_clipper.quality import evaluate as run
    from creatormesh.stream_clipper.quality import format_table
    from creatormesh.stream_clipper.vodgen import load_labels
    from creatormesh.stream_clipper.vodgen import make_vod as generate

    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for seed in range(vods):
        path = out_dir / f"vod-{seed}-{seconds:.0f}s.mp4"
        labels = path.with_suffix(".labels.json")
        made.append(load_labels(labels) if labels.is_file() else generate(path, seconds=seconds, seed=seed))
        typer.echo(f"vod {seed}: {made[-1].path}")
    typer.echo(format_table(run(made)))
