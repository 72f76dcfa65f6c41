"""Service discovery: each installed service distribution registers a
:class:`ServicePlugin` under the ``creatormesh.services`` entry-point group.

Only import paths are stored, so listing services (for ``--help``, ``up`` or the
configuration table) does not import a service's heavy dependencies.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

GROUP = "creatormesh.services"


@dataclass(frozen=True)
class ServicePlugin:
    """What a service distribution contributes to the mesh."""

    name: str
    #: "module:Class" of its :class:`~creatormesh.common.server.Service`
    service: str
    #: "module:Class" of its settings classes (for the configuration table)
    settings: tuple[str, ...] = ()
    #: "module:attr" of a typer app added as ``creatormesh <name> ...`` (or ``<cli_name>``)
    cli: str | None = None
    #: the command group's name when it differs from the service name (e.g. ``clipper``)
    cli_name: str | None = None
    #: "module:function" of its part of ``creatormesh demo``
    demo: str | None = None
    #: "module:function" run before ``up``/``demo`` starts the service (e.g. train a missing model);
    #: it reads the service's settings from the environment like the service does
    prepare: str | None = None
    #: diagnostic services are not started by ``creatormesh up``
    diagnostic: bool = False
    #: start order in ``up``/``demo`` (lower first); consumers of others' events go later
    order: int = 50


def resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def discover() -> dict[str, ServicePlugin]:
    """Installed plugins by name, in start order."""
    found = [ep.load() for ep in entry_points(group=GROUP)]
    plugins = [p for p in found if isinstance(p, ServicePlugin)]
    return {p.name: p for p in sorted(plugins, key=lambda p: (p.order, p.name))}


def mesh_services() -> list[ServicePlugin]:
    """The services `creatormesh up` starts (every installed, non-diagnostic one)."""
    return [p for p in discover().values() if not p.diagnostic]
