"""`creatormesh demo`: start the mesh, drive the end-to-end flow through every
installed service, print a summary and write an HTML report.

Each service contributes its part through its plugin's ``demo`` function,
``async def run(ctx: DemoContext) -> None``, which talks to the running
services over gRPC and Kafka and adds a section to ``ctx.report``. The kit's own
part checks the runtime: every service SERVING, and a round trip through the
event bus (one event applied once despite a duplicate, one poison message
dead-lettered, the consumer still running).
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creatormesh.common import kafka_compat, topics
from creatormesh.common.bus import Event, EventBus, run_consumer
from creatormesh.common.health import check
from creatormesh.common.plugins import ServicePlugin, resolve
from creatormesh.common.runtime.mesh import Mesh, MeshState, say
from creatormesh.common.settings import KitSettings, load
from creatormesh.testing.v1 import echo_pb2


@dataclass
class Section:
    title: str
    summary: list[str] = field(default_factory=list)
    tables: list[tuple[Sequence[str], list[Sequence[Any]]]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    ok: bool = True


@dataclass
class Report:
    sections: list[Section] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(self))


@dataclass
class DemoContext:
    state: MeshState
    bus: EventBus
    report: Report
    workdir: Path

    def target(self, service: str) -> str:
        return self.state.services[service].target


DemoStep = Callable[[DemoContext], Awaitable[None]]


async def mesh_step(ctx: DemoContext) -> None:
    """The kit's part: service health and an event-bus round trip with a poison message."""
    section = ctx.report.section("Mesh runtime")
    rows: list[Sequence[Any]] = []
    for name, service in ctx.state.services.items():
        rows.append([name, service.target, await check(service.target)])
    section.tables.append((["service", "gRPC", "health"], rows))
    section.summary.append(
        f"{len(rows)} service(s) up; Kafka at {ctx.state.kafka_bootstrap}; Redis at {ctx.state.redis_url}"
    )
    say("demo      event-bus round trip: 1 event sent twice + 1 poison message")
    applied: list[str] = []

    async def handler(event: Event) -> None:
        applied.append(event.payload.message)

    event_id = f"demo-{time.time_ns()}"
    ping = echo_pb2.EchoRequest(message="hello mesh")
    await ctx.bus.publish(topics.SELFCHECK, ping, subject="demo", event_id=event_id)
    await ctx.bus.publish(topics.SELFCHECK, ping, subject="demo", event_id=event_id)  # a redelivery
    await ctx.bus.send_raw(topics.SELFCHECK, b"\xffnot-an-envelope", b"demo", [])
    after = echo_pb2.EchoRequest(message="after the poison")
    await ctx.bus.publish(topics.SELFCHECK, after, subject="demo")
    stop = asyncio.Event()
    group = f"demo-selfcheck-{time.time_ns()}"
    task = asyncio.create_task(run_consumer(ctx.bus, group, {topics.SELFCHECK: handler}, stop))
    dlq = await asyncio.to_thread(
        kafka_compat.count_records, ctx.state.kafka_bootstrap, topics.dlq(topics.SELFCHECK), 1, 60
    )
    deadline = time.monotonic() + 60
    while len(applied) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    await task
    ok = applied == ["hello mesh", "after the poison"] and dlq >= 1
    section.ok = ok
    section.summary.append(
        f"event bus: {len(applied)} effects for 3 valid deliveries (one a duplicate), "
        f"{dlq} message(s) in {topics.dlq(topics.SELFCHECK)}, consumer kept going: {'OK' if ok else 'FAILED'}"
    )


async def run_demo(plugins: list[ServicePlugin], report_path: Path, workdir: Path) -> Report:
    report = Report()
    steps: list[tuple[str, DemoStep]] = [("mesh", mesh_step)]
    steps += [(p.name, resolve(p.demo)) for p in plugins if p.demo]
    async with Mesh(plugins) as mesh:
        settings = load(KitSettings, kafka_bootstrap=mesh.state.kafka_bootstrap, redis_url=mesh.state.redis_url)
        bus = EventBus.from_settings(settings, "demo")
        ctx = DemoContext(mesh.state, bus, report, workdir)
        try:
            for name, step in steps:
                say(f"demo      ── {name} ──")
                try:
                    await step(ctx)
                except Exception as exc:  # noqa: BLE001 — report the failure, keep the others
                    failed = report.section(f"{name} (failed)")
                    failed.ok = False
                    failed.summary.append(f"{type(exc).__name__}: {exc}")
        finally:
            await bus.close()
    report.write(report_path)
    return report


def render_html(report: Report) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>creatormesh demo</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".ok{color:#1a7f37}.bad{color:#cf222e}img{max-width:100%;margin:4px}figure{display:inline-block}</style>",
        f"</head><body><h1>creatormesh demo</h1><p>{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(report.started))}"
        f" · {time.time() - report.started:.1f} s</p>",
    ]
    for s in report.sections:
        cls = "ok" if s.ok else "bad"
        parts.append(f"<h2 class='{cls}'>{html.escape(s.title)} {'✔' if s.ok else '✘'}</h2>")
        parts += [f"<p>{html.escape(line)}</p>" for line in s.summary]
        for headers, rows in s.tables:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
            parts.append("</table>")
        for src, caption in s.images:
            parts.append(
                f"<figure><img src='{html.escape(src)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
