"""The service image's Dockerfile: hadolint finds nothing, and the final stage runs one service as a non-root user
with the kit's ports declared. (No Docker daemon on the CI machine: the image itself is built by the image
pipeline; docs/deploy.md.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .tools import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"


def final_stage() -> list[str]:
    text = DOCKERFILE.read_text()
    return text[text.rindex("\nFROM ") :].splitlines()


def test_hadolint_is_clean() -> None:
    out = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_hadolint_is_not_a_pass_through(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    out = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "DL3007" in out.stdout and "DL3002" in out.stdout


def test_final_stage_runs_one_service_unprivileged() -> None:
    lines = final_stage()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(re.match(r"EXPOSE 50051 9464$", line) for line in lines)
    assert 'ENTRYPOINT ["creatormesh", "serve"]' in lines
    assert any("CREATORMESH_SERVICE=${SERVICE}" in line for line in lines)
    text = "\n".join(lines)
    assert "pip uninstall -y pip setuptools wheel" in text  # no installer left in the image
    assert "gcc" not in text and "build-essential" not in text


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*" and "!services/" in lines and "**/tests/" in lines
