"""Registers the ranking service with the mesh (entry point ``creatormesh.services``)."""

from creatormesh.common.plugins import ServicePlugin

plugin = ServicePlugin(
    name="ranking",
    service="creatormesh.ranking.app:RankingService",
    settings=("creatormesh.ranking.settings:RankingSettings",),
    cli="creatormesh.ranking.cli:app",
    demo="creatormesh.ranking.demo:run",
    prepare="creatormesh.ranking.prepare:ensure_model",
    order=30,
)
