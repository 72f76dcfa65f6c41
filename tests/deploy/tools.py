"""Where the deployment tools are: the deploy-tools venv in the user cache (checkov, ansible-lint, yamllint; made by
`make deploy-tools`, as `make test` does), promtool in .tools/, hadolint in the project venv. A missing tool skips
its tests on a developer machine and fails them in CI. Also the one way the tests run checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

DEPLOY_VENV = Path(
    os.environ.get("CREATORMESH_DEPLOY_VENV") or Path.home() / ".cache" / "creatormesh" / "deploy-tools-1"
)


def missing(message: str) -> None:
    if os.environ.get("CI"):
        raise RuntimeError(message)
    pytest.skip(message)


def tool(name: str) -> str:
    """Path of the executable ``name`` from the deploy-tools venv, .tools/ or PATH."""
    for candidate in (DEPLOY_VENV / "bin" / name, ROOT / ".tools" / name, Path(sys.executable).with_name(name)):
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


def checkov(directory: Path, framework: str) -> dict[str, Any]:
    """checkov's JSON report for ``directory`` (offline: --skip-download)."""
    out = subprocess.run(
        [tool("checkov"), "-d", str(directory), "--framework", framework, "--skip-download", "-o", "json"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    report = json.loads(out.stdout)
    result: dict[str, Any] = report[0] if isinstance(report, list) else report
    return result


def failures(report: dict[str, Any]) -> list[str]:
    failed = report.get("results", {}).get("failed_checks", [])
    return [f"{c['check_id']} {c['resource']} ({c['check_name']})" for c in failed]
