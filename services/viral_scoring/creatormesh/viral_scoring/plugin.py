"""Registers the viral_scoring service with the mesh (entry point ``creatormesh.services``)."""

from creatormesh.common.plugins import ServicePlugin

plugin = ServicePlugin(
    name="viral_scoring",
    service="creatormesh.viral_scoring.app:ViralScoringService",
    settings=("creatormesh.viral_scoring.settings:ViralScoringSettings",),
    cli="creatormesh.viral_scoring.cli:app",
    demo="creatormesh.viral_scoring.demo:run",
    prepare="creatormesh.viral_scoring.prepare:ensure_model",
    order=20,
)
