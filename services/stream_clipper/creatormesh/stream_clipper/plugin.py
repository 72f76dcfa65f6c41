"""Registers the stream_clipper service with the mesh (entry point ``creatormesh.services``)."""

from creatormesh.common.plugins import ServicePlugin

plugin = ServicePlugin(
    name="stream_clipper",
    service="creatormesh.stream_clipper.app:StreamClipperService",
    settings=("creatormesh.stream_clipper.settings:StreamClipperSettings",),
    cli="creatormesh.stream_clipper.cli:app",
    cli_name="clipper",
    demo="creatormesh.stream_clipper.demo:run",
    order=25,
)
