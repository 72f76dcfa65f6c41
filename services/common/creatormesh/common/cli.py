"""The ``creatormesh`` command: up, status, serve, demo, config — plus each
installed service's own commands (``creatormesh <service> ...``)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from creatormesh.common import logs
from creatormesh.common.plugins import ServicePlugin, discover, mesh_services, resolve
from creatormesh.common.settings import KitSettings, SettingsBase, SettingsError, load, markdown_table

app = typer.Typer(help="creatormesh: run, inspect and demo the service mesh.", no_args_is_help=True)


def _select(only: str | None) -> list[ServicePlugin]:
    plugins = mesh_services()
    if not only:
        return plugins
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    known = discover()
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {unknown}; installed: {sorted(known)}", param_hint="--only")
    return [known[n] for n in wanted]


@app.command()
def up(
    only: Annotated[
        str | None, typer.Option(help="Comma-separated services to start (default: all installed).")
    ] = None,
    log_format: Annotated[str, typer.Option(help="Service log format: text or json.")] = "text",
) -> None:
    """Start the broker, Redis (if none answers) and every service; stream logs until Ctrl-C."""
    from creatormesh.common.runtime.mesh import Mesh, say

    plugins = _select(only)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Mesh(plugins, log_format=log_format):
            names = ", ".join(p.name for p in plugins) or "no services installed"
            say(f"up        {names} — `creatormesh status` in another terminal; Ctrl-C stops everything")
            await stop.wait()
            say("shutting down")

    asyncio.run(run())


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Health of each service started by `up` and the lag of each consumer group."""
    from creatormesh.common.health import check
    from creatormesh.common.kafka_compat import group_lag
    from creatormesh.common.runtime.mesh import STATE_DIR, MeshState

    path = STATE_DIR / "runtime.json"
    if not path.exists():
        typer.echo("no mesh is running here (start one with `creatormesh up`)", err=True)
        raise typer.Exit(1)
    state = MeshState.load(path)

    async def health() -> dict[str, str]:
        names = list(state.services)
        results = await asyncio.gather(*(check(state.services[n].target) for n in names))
        return dict(zip(names, results, strict=True))

    healths = asyncio.run(health())
    lag = group_lag(state.kafka_bootstrap)
    if as_json:
        typer.echo(json.dumps({"health": healths, "consumer_lag": lag, "kafka": state.kafka_bootstrap}, indent=2))
    else:
        typer.echo(f"kafka {state.kafka_bootstrap}   redis {state.redis_url}")
        typer.echo(f"{'service':<18}{'gRPC':<18}{'metrics':<9}health")
        for name, svc in state.services.items():
            typer.echo(f"{name:<18}{svc.target:<18}{svc.metrics_port:<9}{healths[name]}")
        typer.echo(f"\n{'consumer group':<28}{'topic':<24}lag")
        for group, per_topic in sorted(lag.items()):
            for topic, value in sorted(per_topic.items()):
                typer.echo(f"{group:<28}{topic:<24}{value}")
    if any(h != "SERVING" for h in healths.values()):
        raise typer.Exit(1)


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help="Service to run (what a container runs).", envvar="CREATORMESH_SERVICE")],
) -> None:
    """Run one service in the foreground until SIGTERM (health, metrics, graceful drain)."""
    from creatormesh.common.server import serve as run_service

    plugins = discover()
    if name not in plugins:
        raise typer.BadParameter(f"unknown service {name!r}; installed: {sorted(plugins)}", param_hint="NAME")
    plugin = plugins[name]
    try:
        settings = load(KitSettings)
        for path in plugin.settings:
            load(resolve(path))  # fail fast on the service's own variables too
    except SettingsError as exc:
        typer.echo(f"{name}: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(name, settings.log_level, settings.log_format, settings.environment)
    code = asyncio.run(run_service(resolve(plugin.service), settings))
    raise typer.Exit(code)


@app.command()
def demo(
    report: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("build/demo/report.html"),
    only: Annotated[str | None, typer.Option(help="Comma-separated services (default: all installed).")] = None,
) -> None:
    """Start the mesh, drive the whole flow through every service, print a summary, write a report."""
    from creatormesh.common.demo import run_demo

    plugins = _select(only)
    result = asyncio.run(run_demo(plugins, report, report.parent))
    typer.echo("\n══ demo summary ══")
    for section in result.sections:
        typer.echo(f"{'✔' if section.ok else '✘'} {section.title}")
        for line in section.summary:
            typer.echo(f"    {line}")
        for headers, rows in section.tables:
            widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
            typer.echo("    " + "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False)))
            for row in rows:
                typer.echo("    " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))
    typer.echo(f"\nreport: {report}")
    if not all(s.ok for s in result.sections):
        raise typer.Exit(1)


def settings_classes() -> list[type[SettingsBase]]:
    classes: list[type[SettingsBase]] = [KitSettings]
    for plugin in discover().values():
        classes += [resolve(p) for p in plugin.settings]
    return classes


@app.command()
def config() -> None:
    """Print the configuration table (every environment variable, default and meaning)."""
    typer.echo(markdown_table(settings_classes()))


def _add_service_commands() -> None:
    for plugin in discover().values():
        if plugin.cli:
            app.add_typer(resolve(plugin.cli), name=plugin.cli_name or plugin.name)


def main() -> None:
    _add_service_commands()
    try:
        app()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(2)
