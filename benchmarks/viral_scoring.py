"""viral_scoring speed: ScoreBatch of 64 items per scoring mode (full model as the baseline), the int8 model's
accuracy and speed against the full model, and the seed's rerank bound (16 candidates of a 15-second script in
< 500 ms on CPU).

Starts `creatormesh serve viral_scoring` (its own process) on the checkpoint at --model-dir (trained first if
missing), then measures over gRPC:

- ScoreBatch(64 shipped videos' titles/tags/descriptions): p50/p99 latency with one caller and items/s with
  --concurrency callers, for FULL, QUANTIZED, TWO_STAGE (top 25 %) and LIGHT;
- Rerank of 16 given candidates (~40-word scripts, what is said in 15 s) with their log-probs: p50/p99;
- in process: the full vs int8 model's forward pass on the same 64 items (features precomputed), and the
  largest |V_int8 - V_full|.

    .venv/bin/python benchmarks/viral_scoring.py [--calls 5] [--duration 10] [--rounds 2] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from loadgen import drive, one_caller

from creatormesh.common import client
from creatormesh.common.embeddings import TextEmbedder
from creatormesh.common.health import wait_serving
from creatormesh.common.runtime.processes import spawn_service, stop_process
from creatormesh.viral_scoring import checkpoint
from creatormesh.viral_scoring.data import load_dataset
from creatormesh.viral_scoring.features import embedding_text, featurize
from creatormesh.viral_scoring.model import predict, quantize
from creatormesh.viral_scoring.prepare import ensure_model
from creatormesh.viral_scoring.v1 import viral_scoring_pb2 as pb
from creatormesh.viral_scoring.v1 import viral_scoring_pb2_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["ViralScoringService"]
MODES = {
    "FULL (baseline)": pb.SCORING_MODE_FULL,
    "QUANTIZED int8": pb.SCORING_MODE_QUANTIZED,
    "TWO_STAGE 25 %": pb.SCORING_MODE_TWO_STAGE,
    "LIGHT": pb.SCORING_MODE_LIGHT,
}
WORDS = tuple(
    " ".join(
        [
            "wait for it this is the easiest trick you will ever see I tried it for a week and the results are",
            "insane watch till the end because the last step changes everything nobody tells you this about",
            "cooking at home share it with a friend who needs it and tell me in the comments if it worked for you",
        ]
    ).split()
)


def script(rng: random.Random, words: int = 40) -> str:
    """About what a person says in 15 seconds (2.5-3 words/s)."""
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def in_process(model_dir: Path, items: list[pb.ContentItem], repeats: int = 50) -> None:
    ckpt = checkpoint.load(model_dir)
    records = load_dataset()[: len(items)]
    torch.set_num_threads(1)
    q = quantize(ckpt.full)
    embedder = TextEmbedder(threads=1)
    texts = [embedding_text(r.item) for r in records]
    embedder.embed(texts[:2])
    t0 = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_ms = (time.perf_counter() - t0) * 1e3
    batch = featurize([r.item for r in records], embed=lambda _: vectors, media=False)
    timings: dict[str, float] = {}
    for name, model in (("full", ckpt.full), ("int8", q)):
        predict(model, batch)
        t0 = time.perf_counter()
        for _ in range(repeats):
            predict(model, batch)
        timings[name] = (time.perf_counter() - t0) / repeats * 1e3
    v, _ = predict(ckpt.full, batch)
    vq, _ = predict(q, batch)
    print(f"\nin process, forward pass on {len(records)} items (features precomputed), mean of {repeats}")
    print(f"  full {timings['full']:.2f} ms, int8 {timings['int8']:.2f} ms ({timings['full'] / timings['int8']:.2f}x)")
    print(f"  for scale: the MiniLM sentence embeddings of the same {len(records)} texts take {embed_ms:.0f} ms")
    print(f"  |V_int8 - V_full|: max {np.abs(v - vq).max():.4f}, mean {np.abs(v - vq).mean():.4f}")
    rows = ckpt.metadata["evaluation"]["settings"]
    for setting, table in rows.items():
        full, int8 = table["full model"], table["full model, int8"]
        print(
            f"  held-out {setting}: full MSE {full['mse']:.4f} Spearman {full['spearman']:.3f} | "
            f"int8 MSE {int8['mse']:.4f} Spearman {int8['spearman']:.3f}"
        )


async def main(args: argparse.Namespace) -> None:
    model_dir: Path = args.model_dir
    await asyncio.to_thread(ensure_model, model_dir)
    records = load_dataset()[: args.batch]
    items = [
        pb.ContentItem(
            id=r.item.id,
            kind=pb.CONTENT_KIND_VIDEO,
            title=r.item.title,
            description=r.item.description[:2000],
            tags=list(r.item.tags[:100]),
            channel_title=r.item.channel_title,
            category_id=r.item.category_id or 0,
        )
        for r in records
    ]
    rng = random.Random(0)
    candidates = [
        pb.RerankCandidate(id=f"c{i}", text=script(rng), log_prob=-rng.uniform(40, 90), token_count=50)
        for i in range(16)
    ]
    env = {"CREATORMESH_VIRAL_SCORING_MODEL_PATH": str(model_dir), "CREATORMESH_REDIS_URL": args.redis_url}
    proc, target = spawn_service("viral_scoring", env)
    try:
        t0 = time.perf_counter()
        await wait_serving(target, 600, proc=proc)
        print(f"viral_scoring SERVING after {time.perf_counter() - t0:.1f} s")
        stub = viral_scoring_pb2_grpc.ViralScoringServiceStub(client.channel(target, SERVICE, deadline=120))

        def batch_call(mode: int) -> object:
            options = pb.ScoringOptions(mode=mode)  # type: ignore[arg-type]
            return lambda: stub.ScoreBatch(pb.ScoreBatchRequest(items=items, options=options))

        print(f"\nScoreBatch of {len(items)} items, one caller, {args.calls} calls")
        print(f"{'mode':<18} {'p50 ms':>8} {'p99 ms':>8} {'vs full':>8}")
        base = 0.0
        for name, mode in MODES.items():
            p50, p99 = await one_caller(batch_call(mode), args.calls)  # type: ignore[arg-type]
            base = base or p50
            print(f"{name:<18} {p50:8.1f} {p99:8.1f} {base / p50:7.2f}x")
        results: dict[str, list[float]] = {name: [] for name in MODES}
        for _ in range(args.rounds):
            for name, mode in MODES.items():
                qps = await drive(batch_call(mode), args.duration, args.concurrency)  # type: ignore[arg-type]
                results[name].append(qps * len(items))
        full_rate = statistics.median(results["FULL (baseline)"])
        print(f"\n{args.concurrency} callers, median of {args.rounds} rounds of {args.duration:.0f} s")
        print(f"{'mode':<18} {'items/s':>8} {'vs full':>8}")
        for name, rates in results.items():
            print(f"{name:<18} {statistics.median(rates):8.0f} {statistics.median(rates) / full_rate:7.2f}x")

        print("\nRerank: 16 given candidates of a 15-second script (~40 words), one caller")
        print(f"{'mode':<18} {'p50 ms':>8} {'p99 ms':>8}  goal < 500 ms")
        for name, mode in (("TWO_STAGE", pb.SCORING_MODE_TWO_STAGE), ("FULL", pb.SCORING_MODE_FULL)):
            request = pb.RerankRequest(
                candidates=pb.RerankCandidates(candidates=candidates), options=pb.ScoringOptions(mode=mode)
            )
            p50, p99 = await one_caller(lambda r=request: stub.Rerank(r), args.calls)  # type: ignore[misc]
            print(f"{name:<18} {p50:8.1f} {p99:8.1f}  {'met' if p99 < 500 else 'MISSED'}")
        await client.close_all()
    finally:
        stop_process(proc, 60)
    in_process(model_dir, items)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--model-dir", type=lambda p: Path(p).absolute(), default=".creatormesh/viral_scoring/model")
    parser.add_argument("--redis-url", default=os.environ.get("CREATORMESH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    asyncio.run(main(parser.parse_args()))
