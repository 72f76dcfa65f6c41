"""The DPO policy: preference dataset, prompt parsing, the engine's repair rules,
the tiny offline model, a DPO smoke run, held-out evaluation and local serving."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from creatormesh.allocation.fairness import FairnessEngine
from creatormesh.allocation.policy.dataset import (
    MIN_GAP,
    NEWCOMER_MONTHS,
    SHARE_BOUNDS,
    VIOLATIONS,
    PreferencePair,
    generate,
    label_counts,
    population_context,
    read_jsonl,
    split_by_creator,
    to_dpo_records,
    write_jsonl,
)
from creatormesh.allocation.policy.prompts import build_messages, format_answer, parse_answer
from creatormesh.allocation.policy.serve import Decision, EndpointPolicy, Proposal, proposal_from_text, repair
from creatormesh.allocation.population import simulate
from creatormesh.allocation.signals import CreatorSignals

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

N_PAIRS = 90
SEED = 7


@pytest.fixture(scope="module")
def pairs() -> list[PreferencePair]:
    return generate(N_PAIRS, SEED)


@pytest.fixture(scope="module")
def engine() -> FairnessEngine:
    return FairnessEngine()


@pytest.fixture(scope="module")
def creator() -> tuple[str, CreatorSignals]:
    return simulate(5, 3)[2]


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


# --- dataset -----------------------------------------------------------------------------------


def test_labels_are_balanced(pairs: list[PreferencePair]) -> None:
    counts = label_counts(pairs)
    assert set(counts) == set(VIOLATIONS) and len(VIOLATIONS) == 9
    assert max(counts.values()) - min(counts.values()) <= 1
    assert sum(counts.values()) == N_PAIRS


def test_creators_are_diverse(pairs: list[PreferencePair]) -> None:
    population = simulate(N_PAIRS, SEED)
    regions = {s.region for _, s in population if s.region}
    categories = {s.content_category for _, s in population if s.content_category}
    seen_regions = {p.signals["region"] for p in pairs}
    seen_categories = {p.signals["content_category"] for p in pairs}
    for simulated, seen in ((regions, seen_regions), (categories, seen_categories)):
        assert simulated <= seen if len(simulated) >= 3 else len(seen) >= 3
    months = [p.signals["creator_experience_months"] for p in pairs]
    followers = [p.signals["follower_count"] for p in pairs]
    assert min(months) < NEWCOMER_MONTHS and max(months) >= 36
    assert min(followers) < 20_000 and max(followers) >= 1_000_000


def test_chosen_is_the_engines_answer(pairs: list[PreferencePair], engine: FairnessEngine) -> None:
    context = population_context(N_PAIRS, SEED)
    for pair in pairs:
        answer = parse_answer(pair.chosen)
        assessment = engine.assess(pair.creator_id, pair.creator_signals(), context)
        assert answer.share == pytest.approx(engine.recommended_share(assessment), abs=6e-4)
        assert answer.share == pair.chosen_share
        assert engine.min_share <= answer.share <= engine.max_share
        assert answer.rationale == " ".join(assessment.rationale.split())
        assert answer.principle is not None
        assert pair.prompt == build_messages(pair.creator_signals())


def test_rejected_violates_the_named_principle(pairs: list[PreferencePair], engine: FairnessEngine) -> None:
    for pair in pairs:
        rejected = parse_answer(pair.rejected)
        assert rejected.share == pair.rejected_share
        s = pair.creator_signals()
        if pair.violated == SHARE_BOUNDS:
            assert not engine.min_share <= rejected.share <= engine.max_share, pair
            continue
        assert abs(rejected.share - pair.chosen_share) >= MIN_GAP - 1e-9, pair
        assert engine.min_share <= rejected.share <= engine.max_share
        if pair.violated == "content_quality":  # traffic-only: the share follows the audience, not the quality
            quality = s.overall_rating
            assert (rejected.share > pair.chosen_share) == (quality < 0.5), pair
            assert "audience" in rejected.rationale or "views" in rejected.rationale
            continue
        assert rejected.share < pair.chosen_share, pair  # the principle's beneficiary is underpaid
        if pair.violated == "newbie_support":
            assert s.creator_experience_months < NEWCOMER_MONTHS
            assert str(s.creator_experience_months) in rejected.rationale
            assert pair.principle_score is not None and pair.principle_score > 0
        elif pair.violated == "niche_protection":
            assert min(s.content_value, s.overall_rating) >= 0.8 and s.follower_count <= 15_000
            assert "low-quality" in rejected.rationale
        elif pair.violated == "geographic_fairness":
            assert s.region and s.region in rejected.rationale
        elif pair.violated == "content_diversity":
            assert s.content_category and s.content_category in rejected.rationale
        elif pair.violated == "loyalty_reward":
            assert s.creator_experience_months >= 36 and s.consistency_score >= 0.85
        elif pair.violated == "peak_performance":
            assert s.peak_viewers >= 4 * s.avg_viewers - 1
        elif pair.violated == "traffic_contribution":
            assert s.engagement_rate >= 0.15


def test_held_out_split_is_disjoint_by_creator(pairs: list[PreferencePair]) -> None:
    per_creator: dict[str, int] = {}
    for p in pairs:
        per_creator[p.creator_id] = per_creator.get(p.creator_id, 0) + 1
    assert max(per_creator.values()) >= 2  # some creators have several pairs: the split must keep them together
    train, held = split_by_creator(pairs, 27, seed=1)
    assert 27 <= len(held) <= 27 + max(per_creator.values())
    assert len(train) + len(held) == len(pairs)
    assert not {p.creator_id for p in train} & {p.creator_id for p in held}
    assert len({p.violated for p in held}) == len(VIOLATIONS)


def test_jsonl_round_trip_and_reproducible(pairs: list[PreferencePair], tmp_path: Path) -> None:
    path = write_jsonl(pairs, tmp_path / "pairs.jsonl")
    assert read_jsonl(path) == pairs
    assert generate(12, SEED) == generate(12, SEED)
    records = to_dpo_records(pairs[:2])
    assert records[0]["prompt"][0]["role"] == "system" and records[0]["chosen"][0]["role"] == "assistant"
    (tmp_path / "bad.jsonl").write_text('{"pair_id": "x"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        read_jsonl(tmp_path / "bad.jsonl")


# --- prompt and parsing --------------------------------------------------------------------------


def test_prompt_names_principles_weights_and_signals(creator: tuple[str, CreatorSignals]) -> None:
    _, signals = creator
    system, user = build_messages(signals)
    assert "newbie_support 15" in system["content"] and "content_quality 25" in system["content"]
    data = json.loads(user["content"])
    assert len(data) == 19 and data["follower_count"] == signals.follower_count
    assert data["region"] == signals.region


def test_parse_good_and_fenced_answers() -> None:
    good = format_answer(0.62, "newbie_support", "New creator boost.")
    answer = parse_answer(good)
    assert answer.share == 0.62 and answer.principle is not None and answer.rationale == "New creator boost."
    fenced = parse_answer(f"```json\n{good}\n```")
    assert fenced == answer
    assert parse_answer('{"recommended_share": 1}').share == 1.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("the share is 0.6", "not one JSON object"),
        ('{"recommended_share": 0.6} and more', "not one JSON object"),
        ("[0.6]", "JSON object"),
        ('{"principle": "content_quality"}', "no recommended_share"),
        ('{"recommended_share": NaN}', "finite"),
        ('{"recommended_share": -Infinity}', "finite"),
        ('{"recommended_share": 1e999}', "finite"),
        ('{"recommended_share": "0.6"}', "number"),
        ('{"recommended_share": true}', "number"),
        ('{"recommended_share": 0.6, "rationale": 3}', "rationale"),
    ],
)
def test_parse_rejects_garbage(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_answer(text)


# --- repair --------------------------------------------------------------------------------------


def _decide(engine: FairnessEngine, creator: tuple[str, CreatorSignals], share: float | None, **kw: Any) -> Decision:
    cid, signals = creator
    return repair(Proposal(share, "policy says so", "", "" if share is not None else "bad"), engine, cid, signals, **kw)


def test_repair_rules(engine: FairnessEngine, creator: tuple[str, CreatorSignals]) -> None:
    cid, signals = creator
    expected = engine.recommended_share(engine.assess(cid, signals))

    unusable = repair(proposal_from_text("garbage"), engine, cid, signals)
    assert unusable.fallback and unusable.share == pytest.approx(expected) and "unusable" in unusable.reason
    assert unusable.rationale  # the engine's rationale explains the share
    assert _decide(engine, creator, None).fallback
    assert _decide(engine, creator, math.nan).fallback

    near = min(engine.max_share, expected + 0.05)
    kept = _decide(engine, creator, near)
    assert not kept.fallback and kept.reason == "" and kept.share == near and kept.rationale == "policy says so"

    high = _decide(engine, creator, 1.4)
    assert not high.fallback and "clamped" in high.reason and high.share <= engine.max_share
    low = _decide(engine, creator, -0.2)
    assert "clamped" in low.reason and low.share >= engine.min_share

    band = _decide(engine, creator, expected - 0.3, tolerance=0.1)
    assert "pulled back" in band.reason and band.share == pytest.approx(max(engine.min_share, expected - 0.1))
    assert "Engine check" in band.rationale
    wide = _decide(engine, creator, max(engine.min_share, expected - 0.2), tolerance=0.25)
    assert wide.reason == ""
    for share in (None, -5.0, 0.0, 0.41, 0.5, 0.79, 0.95, 7.0):
        d = _decide(engine, creator, share)
        assert engine.min_share <= d.share <= engine.max_share and abs(d.share - expected) <= 0.15 + 1e-9
    with pytest.raises(ValueError):
        _decide(engine, creator, 0.5, tolerance=2.0)


async def test_endpoint_policy(creator: tuple[str, CreatorSignals]) -> None:
    cid, signals = creator
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        assert request.url.path == "/v1/chat/completions"
        if body["model"] == "broken":
            return httpx.Response(503, text="overloaded")
        if body["model"] == "slow":
            raise httpx.ReadTimeout("slow", request=request)
        if body["model"] == "weird":
            return httpx.Response(200, json={"choices": []})
        content = format_answer(0.55, "content_quality", "Good streams.")
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    good = await EndpointPolicy("http://vllm:8000/v1", "allocation-policy", client=client).propose(cid, signals)
    assert good.share == 0.55 and good.rationale == "Good streams." and not good.error
    assert seen[0]["temperature"] == 0.0 and seen[0]["messages"][1]["role"] == "user"
    for model, error in (("broken", "HTTP 503"), ("slow", "timed out"), ("weird", "malformed")):
        proposal = await EndpointPolicy("http://vllm:8000", model, timeout=1, client=client).propose(cid, signals)
        assert proposal.share is None and error in proposal.error
    await client.aclose()


# --- tiny model, DPO smoke run, evaluation, local serving ---------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from creatormesh.allocation.policy.tiny import build_tiny_model, corpus_from_pairs

    out = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(out, seed=0, corpus=corpus_from_pairs(generate(60, 0)))


@pytest.fixture(scope="module")
def split(pairs: list[PreferencePair]) -> tuple[list[PreferencePair], list[PreferencePair]]:
    return split_by_creator(pairs, 18, seed=0)


@pytest.fixture(scope="module")
def adapter(tiny_model: Path, split: tuple[list[PreferencePair], list[PreferencePair]], tmp_path_factory: Any) -> Path:
    for name in ("trl", "peft", "datasets"):
        pytest.importorskip(name)
    from creatormesh.allocation.policy.train import train

    root = tmp_path_factory.mktemp("dpo")
    dataset = write_jsonl(split[0], root / "train.jsonl")
    result = train(tiny_model, dataset, root / "adapter", steps=5, batch_size=4, seed=0, progress=False)
    assert result.steps == 5 and result.n_pairs == len(split[0])
    return result.adapter_dir


def test_tiny_model_reloads_offline(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (tiny_model / "model.safetensors").is_file() and not list(tiny_model.glob("*.bin"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, local_files_only=True)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|pad|>"
    config = model.config
    assert (config.hidden_size, config.num_attention_heads, config.num_key_value_heads) == (128, 4, 2)
    assert config.num_hidden_layers == 2 and config.tie_word_embeddings and config.model_type == "qwen2"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer('{"recommended_share": 0.62}')["input_ids"]
    assert tokenizer.decode(ids) == '{"recommended_share": 0.62}'
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tokenizer))


def test_dpo_smoke_run_saves_adapter_and_metadata(adapter: Path) -> None:
    from creatormesh.allocation.policy.train import METADATA_FILE, policy_version

    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    meta = json.loads((adapter / METADATA_FILE).read_text())
    assert meta["training"]["steps"] == 5 and meta["adapter"]["lora_rank"] == 16 and meta["training"]["lr"] == 2e-4
    assert len(meta["dataset"]["sha256"]) == 64 and meta["version"] == policy_version(adapter)
    assert {"loss", "rewards/accuracies", "rewards/margins"} <= set(meta["metrics"])
    assert meta["history"] and all(math.isfinite(row["loss"]) for row in meta["history"] if "loss" in row)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert {"q_proj", "v_proj", "down_proj"} <= set(config["target_modules"])


def test_evaluate_on_held_out_pairs(
    tiny_model: Path, adapter: Path, split: tuple[list[PreferencePair], list[PreferencePair]]
) -> None:
    from creatormesh.allocation.policy.evaluate import evaluate

    held = split[1][:8]
    result = evaluate(tiny_model, adapter, held)
    assert result.n == len(held)
    assert 0.0 <= result.preference_accuracy <= 1.0 and 0.0 <= result.base_preference_accuracy <= 1.0
    assert math.isfinite(result.mean_reward_margin) and math.isfinite(result.base_mean_logp_margin)
    assert set(result.per_principle) <= set(VIOLATIONS) and set(result.per_principle) == set(result.base_per_principle)
    assert all(0.0 <= v <= 1.0 for v in result.per_principle.values())
    base_only = evaluate(tiny_model, None, held[:2])
    assert base_only.preference_accuracy == 0.0 and base_only.mean_reward_margin == 0.0  # policy == reference


async def test_local_policy_proposal_is_repaired(
    tiny_model: Path, adapter: Path, engine: FairnessEngine, creator: tuple[str, CreatorSignals]
) -> None:
    from creatormesh.allocation.policy.serve import LocalPolicy

    cid, signals = creator
    policy = LocalPolicy(tiny_model, adapter, max_new_tokens=24)
    proposal = await policy.propose(cid, signals)
    assert isinstance(proposal.raw, str)
    decision = repair(proposal, engine, cid, signals)
    expected = engine.recommended_share(engine.assess(cid, signals))
    if proposal.share is None:  # a tiny random model rarely writes valid JSON: the engine decides
        assert proposal.error and decision.fallback and decision.share == pytest.approx(expected)
    assert engine.min_share <= decision.share <= engine.max_share
    assert abs(decision.share - expected) <= 0.15 + 1e-9 and decision.rationale
    assert decision.assessment is not None and decision.assessment.creator_id == cid

    policy.timeout = 1e-6  # a policy that cannot answer in time leaves the decision to the engine
    late = await policy.propose(cid, signals)
    assert late.share is None and "timed out" in late.error
    assert repair(late, engine, cid, signals).fallback
