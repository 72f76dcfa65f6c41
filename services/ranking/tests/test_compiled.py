"""The compiled serving path computes what the Python recommender computes, from the same checkpoint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from creatormesh.ranking.recommender import Recommender, UserContext


def embed(binary: Path, model: Path, users: list[UserContext]) -> list[dict[str, object]]:
    lines = "".join(
        json.dumps({"user_id": u.user_id, "interests": list(u.interests), "history": list(u.history)}) + "\n"
        for u in users
    )
    done = subprocess.run(
        [str(binary), "embed", "--model", str(model)], input=lines, capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_user_vectors_and_sequence_states_match_the_recommender(binary: Path, trained_model: Path) -> None:
    rec = Recommender.load(trained_model)
    ids, users_seen = rec.item_ids, rec.space.users
    assert len(ids) > 120
    users = [
        UserContext(users_seen[0], ("Comedy", "#Drama", "drama"), tuple(ids[:5])),  # a trained user; case, "#"
        UserContext("never-seen", (), tuple(ids[10:90])),  # longer than both windows (history 50, max_len 50)
        UserContext("new", ("comedy", "no-such-interest"), ()),  # no history: neutral sequence state
        UserContext("mixed", (), ("unknown-1", ids[3], "unknown-2", ids[7])),  # ids the models never saw
        UserContext("", ("action", "action"), tuple(ids[::3][:40])),  # an empty id: OOV
    ]
    got = embed(binary, trained_model, users)
    vectors = rec.user_vectors(users)
    states, known = rec.sequence_states(users)
    assert len(got) == len(users)
    for i, row in enumerate(got):
        np.testing.assert_allclose(np.array(row["user_vector"]), vectors[i], atol=1e-5, err_msg=users[i].user_id)
        np.testing.assert_allclose(np.array(row["sequence_state"]), states[i], atol=1e-4, err_msg=users[i].user_id)
        assert row["known"] == bool(known[i])
    assert [row["known"] for row in got] == [True, True, False, True, True]


def test_a_missing_checkpoint_is_a_clear_error(binary: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(binary), "embed", "--model", str(tmp_path)], input="", capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert f"no checkpoint at {tmp_path}" in done.stderr
    usage = subprocess.run([str(binary)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage: ranking-serving" in usage.stderr
