"""Registers the video_diffusion service with the mesh (entry point ``creatormesh.services``)."""

from creatormesh.common.plugins import ServicePlugin

plugin = ServicePlugin(
    name="video_diffusion",
    service="creatormesh.video_diffusion.app:VideoDiffusionService",
    settings=("creatormesh.video_diffusion.settings:VideoDiffusionSettings",),
    cli="creatormesh.video_diffusion.cli:app",
    cli_name="video",
    demo="creatormesh.video_diffusion.demo:run",
    prepare="creatormesh.video_diffusion.prepare:ensure_model",
    order=40,
)
