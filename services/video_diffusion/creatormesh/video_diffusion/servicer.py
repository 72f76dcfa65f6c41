"""gRPC adapter: VideoDiffusionService proto <-> the service's use cases, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from creatormesh.common.paging import next_token, page
from creatormesh.video_diffusion.v1 import video_diffusion_pb2 as pb
from creatormesh.video_diffusion.v1 import video_diffusion_pb2_grpc

from .convert import adapter_pb, candidate_pb, generation, job_pb, require_id
from .worker import Progress

if TYPE_CHECKING:
    from .app import VideoDiffusionService


def watch_pb(p: Progress) -> pb.WatchJobResponse:
    msg = pb.WatchJobResponse(
        job_id=p.job_id, status=pb.JobStatus.ValueType(p.status), candidate_id=p.candidate_id, step=p.step,
        total_steps=p.total_steps, fraction=p.fraction, message=p.message, error=p.error,
    )  # fmt: skip
    if p.candidate_index is not None:
        msg.candidate_index = p.candidate_index
    if p.candidate is not None:
        msg.candidate.CopyFrom(candidate_pb(p.candidate))
    return msg


class VideoDiffusionServicer(video_diffusion_pb2_grpc.VideoDiffusionServiceServicer):
    def __init__(self, service: VideoDiffusionService) -> None:
        self.service = service

    async def SubmitGeneration(self, request: pb.SubmitGenerationRequest, context: Any) -> pb.SubmitGenerationResponse:
        s = self.service
        require_id(request.request_id, "request_id")
        require_id(request.user_id, "user_id", 256)
        params, count, vary = generation(
            request.params, request.HasField("params"), s.engine.limits, s.settings.default_negative_prompt
        )
        version = request.adapter_version if request.HasField("adapter_version") else None
        if version is not None:
            require_id(version, "adapter_version", 64)
        job, replayed = await s.submit(
            request_id=request.request_id, user_id=request.user_id, params=params, num_candidates=count,
            vary_prompt=vary, adapter_version=version,
        )  # fmt: skip
        return pb.SubmitGenerationResponse(job=job_pb(job), replayed=replayed)

    async def WatchJob(self, request: pb.WatchJobRequest, context: Any) -> AsyncIterator[pb.WatchJobResponse]:
        require_id(request.job_id, "job_id")
        async for update in self.service.watch(request.job_id):
            yield watch_pb(update)

    async def GetJob(self, request: pb.GetJobRequest, context: Any) -> pb.GetJobResponse:
        require_id(request.job_id, "job_id")
        return pb.GetJobResponse(job=job_pb(await self.service.get_job(request.job_id)))

    async def ListCandidates(self, request: pb.ListCandidatesRequest, context: Any) -> pb.ListCandidatesResponse:
        require_id(request.job_id, "job_id")
        job = await self.service.get_job(request.job_id)
        return pb.ListCandidatesResponse(candidates=[candidate_pb(c) for c in job.candidates])

    async def SelectCandidate(self, request: pb.SelectCandidateRequest, context: Any) -> pb.SelectCandidateResponse:
        require_id(request.job_id, "job_id")
        require_id(request.candidate_id, "candidate_id")
        require_id(request.user_id, "user_id", 256)
        r = await self.service.select(request.job_id, request.candidate_id, request.user_id)
        return pb.SelectCandidateResponse(
            job_id=r.pick.job_id, candidate_id=r.pick.candidate_id, picks_total=r.picks_total,
            picks_since_retrain=r.picks_since_retrain, retrain_threshold=r.retrain_threshold,
            retrain_triggered=r.retrain_triggered, already_recorded=r.already_recorded,
        )  # fmt: skip

    async def CancelJob(self, request: pb.CancelJobRequest, context: Any) -> pb.CancelJobResponse:
        require_id(request.job_id, "job_id")
        return pb.CancelJobResponse(job=job_pb(await self.service.cancel(request.job_id)))

    async def ListAdapters(self, request: pb.ListAdaptersRequest, context: Any) -> pb.ListAdaptersResponse:
        offset, limit = page(request.page_size, request.page_token, 50, max_size=200)
        adapters, active = await self.service.list_adapters(offset, limit)
        return pb.ListAdaptersResponse(
            adapters=[adapter_pb(a) for a in adapters],
            next_page_token=next_token(offset, limit, len(adapters)),
            active_version=active,
        )

    async def ActivateAdapter(self, request: pb.ActivateAdapterRequest, context: Any) -> pb.ActivateAdapterResponse:
        require_id(request.version, "version", 64)
        adapter, previous = await self.service.activate(request.version)
        return pb.ActivateAdapterResponse(adapter=adapter_pb(adapter), previous_version=previous)
