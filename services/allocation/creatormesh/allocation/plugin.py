"""Registers the allocation service with the mesh (entry point ``creatormesh.services``)."""

from creatormesh.common.plugins import ServicePlugin

plugin = ServicePlugin(
    name="allocation",
    service="creatormesh.allocation.app:AllocationService",
    settings=("creatormesh.allocation.settings:AllocationSettings",),
    cli="creatormesh.allocation.cli:app",
    demo="creatormesh.allocation.demo:run",
    order=40,
)
