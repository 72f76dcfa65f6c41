"""Where the deployment tools are: the deploy-tools venv in the user cache (checkov, ansible-lint, yamllint; made by
`make deploy-tools`, as `make test` does), promtool in .tools/, hadolint in the project venv. A missing tool skips
its tests on a developer machine and fails them in CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .render import ROOT

DEPLOY_VENV = Path(
    os.environ.get("CREATORMESH_DEPLOY_VENV") or Path.home() / ".cache" / "creatormesh" / "deploy-tools-1"
)


def missing(message: str) -> None:
    if os.environ.get("CI"):
        raise RuntimeError(message)
    pytest.skip(message)


def tool(name: str) -> str:
    """Path of the executable ``name`` from the deploy-tools venv, .tools/ or PATH."""
    for candidate in (DEPLOY_VENV / "bin" / name, ROOT / ".tools" / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed: run make deploy-tools")
    assert found is not None
    return found


def tool_env() -> dict[str, str]:
    """Environment for the tools: the deploy-tools venv first on PATH (ansible-lint runs ansible-playbook)."""
    return {**os.environ, "PATH": f"{DEPLOY_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
