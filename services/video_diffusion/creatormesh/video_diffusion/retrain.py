"""The retraining use case: fine-tune a LoRA adapter on the recorded picks (prompt + chosen video), compare it with
the adapter serving now on held-out picks, and register it only if it is not worse. What `creatormesh video
train-lora` runs, by hand or as the job a `retrain.requested` event starts.

The picks are split by time: the newest ``holdout`` share is the evaluation set, so the new adapter is judged on
preferences it has not seen. Training starts from the active adapter (continual fine-tuning); the comparison uses
the model's own flow-matching loss with fixed noise and timesteps, so both adapters see the same draws.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from creatormesh.common.errors import FailedPrecondition
from creatormesh.common.storage import Storage, fetch_local

from .lora import ADAPTER_INFO, WEIGHTS_NAME, Sample, Tracker, TrainConfig, evaluate_adapter, train_lora
from .records import BASE_VERSION, Adapter, Pick
from .store import JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainOutcome:
    version: str
    parent_version: str
    registered: bool
    new_loss: float
    parent_loss: float
    train_samples: int
    eval_samples: int
    train_seconds: float
    reason: str


def split(picks: list[Pick], holdout: float) -> tuple[list[Pick], list[Pick]]:
    """(train, eval) by time: the newest ``holdout`` share evaluates (at least one pick when there are two or more;
    with a single pick it is used for both, which only checks that training runs)."""
    if not picks:
        return [], []
    if len(picks) == 1:
        return picks, picks
    held = min(len(picks) - 1, max(1, math.ceil(len(picks) * holdout)))
    return picks[:-held], picks[-held:]


def next_version(store: JobStore) -> str:
    versions = [a.version for a in store.list_adapters(limit=10_000)]
    numbers = [int(v.split("-")[1]) for v in versions if v.startswith("lora-") and v.split("-")[1].isdigit()]
    return f"lora-{max(numbers, default=0) + 1:04d}"


def retrain(
    store: JobStore,
    storage: Storage,
    model_dir: Path,
    work_dir: Path,
    config: TrainConfig,
    *,
    base_model: str,
    holdout: float = 0.2,
    min_picks: int = 1,
    tolerance: float = 0.0,
    tracker: Tracker | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> RetrainOutcome:
    """Train, compare and (if not worse than the active adapter, within ``tolerance`` relative) register a new
    adapter version from every pick so far. FailedPrecondition when there are fewer than ``min_picks``."""
    picks = store.picks(limit=1_000_000)
    if len(picks) < max(1, min_picks):
        raise FailedPrecondition(f"{len(picks)} picks recorded; retraining needs at least {max(1, min_picks)}")
    cache = work_dir / "cache"
    samples = {p.pick_number: Sample(p.prompt, fetch_local(p.video_url, cache / "videos", storage)) for p in picks}
    train, held = split(picks, holdout)
    parent = store.active_version()
    parent_dir = None
    if parent != BASE_VERSION:
        parent_dir = fetch_local(store.require_adapter(parent).uri, cache / "adapters", storage).parent
    version = next_version(store)
    out = work_dir / version
    shutil.rmtree(out, ignore_errors=True)
    if tracker is not None:
        tracker.log_params({"version": version, "parent_version": parent, "picks": len(picks), "holdout": holdout})
    result = train_lora(
        model_dir,
        [samples[p.pick_number] for p in train],
        out,
        config,
        init_adapter=parent_dir,
        on_step=on_step,
        tracker=tracker,
    )
    eval_samples = [samples[p.pick_number] for p in held]
    eval_config = replace(config, seed=config.seed + 1_000_003)  # draws independent of training's
    new_loss = evaluate_adapter(model_dir, out, eval_samples, eval_config)
    parent_loss = evaluate_adapter(model_dir, parent_dir, eval_samples, eval_config)
    registered = new_loss <= parent_loss * (1.0 + tolerance)
    if tracker is not None:
        tracker.log_metrics({"eval_loss": new_loss, "parent_eval_loss": parent_loss, "registered": float(registered)})
    reason = f"held-out loss {new_loss:.5f} vs {parent_loss:.5f} for {parent}" + (
        "" if registered else f": worse by more than {tolerance:.0%}, not registered"
    )
    if registered:
        uri = storage.put_file(out / WEIGHTS_NAME, f"adapters/{version}/{WEIGHTS_NAME}")
        storage.put_file(out / ADAPTER_INFO, f"adapters/{version}/{ADAPTER_INFO}", content_type="application/json")
        store.register_adapter(
            Adapter(
                version=version,
                base_model=base_model,
                uri=uri,
                parent_version=parent,
                training_samples=len(train),
                metrics={"eval_loss": new_loss, "parent_eval_loss": parent_loss, "train_loss": result.final_loss},
                rank=int(result.info.get("rank", config.rank)),
                created_at=time.time(),
            )
        )
    log.info("retraining %s: %s", version, reason)
    return RetrainOutcome(
        version, parent, registered, new_loss, parent_loss, len(train), len(held), result.seconds, reason
    )
