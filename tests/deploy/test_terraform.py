"""terraform/: checkov (offline) with 0 failed checks and every skip justified; every file parsed by a real HCL2
parser and the configuration checked the way `terraform validate` would for what it can see offline (module
arguments against the modules' variables, required variables passed, every var.* declared, providers pinned,
remote state encrypted and locked); `terraform fmt -check` / `validate` when a terraform binary and a local
provider mirror are here (never downloaded: skipped with the reason otherwise)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .tools import DEPLOY_VENV, ROOT, checkov, failures, tool

TERRAFORM = ROOT / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
ROOTS = sorted(p for p in (TERRAFORM / "environments").iterdir() if p.is_dir())


def parse(directory: Path) -> dict[str, Any]:
    """All .tf files of ``directory`` parsed (bc-python-hcl2, checkov's parser), merged by block type."""
    tool("checkov")  # the deploy-tools venv is there
    files = sorted(str(p) for p in directory.glob("*.tf"))
    out = subprocess.run(
        [str(DEPLOY_VENV / "bin" / "python"), str(Path(__file__).with_name("hcl_dump.py")), *files],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, f"HCL parse error in {directory}: {out.stderr[-2000:]}"
    merged: dict[str, list[Any]] = {}
    for blocks in json.loads(out.stdout).values():
        for kind, items in blocks.items():
            merged.setdefault(kind, []).extend(items)
    return merged


def named(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: body for block in blocks for name, body in block.items()}


def source_text(directory: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(directory.glob("*.tf")))


def test_checkov_passes_with_justified_skips(tmp_path: Path) -> None:
    report = checkov(TERRAFORM, "terraform")
    assert failures(report) == []
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 150
    for skipped in report["results"].get("skipped_checks", []):
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']} skipped without a reason"


@pytest.mark.parametrize("directory", [*MODULES, *ROOTS], ids=lambda p: p.name)
def test_configuration_is_consistent(directory: Path) -> None:
    config = parse(directory)
    declared = set(named(config.get("variable", [])))
    used = set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", source_text(directory)))
    assert used <= declared, f"{directory.name}: undeclared {sorted(used - declared)}"
    for name, body in named(config.get("variable", [])).items():
        assert body.get("description"), f"{directory.name}: variable {name} has no description"
    (terraform,) = config["terraform"]
    providers = terraform["required_providers"][0]
    for name, (spec,) in providers.items():
        assert spec["version"].startswith("~>"), f"{directory.name}: provider {name} not pinned"
    for call, body in named(config.get("module", [])).items():
        module_dir = (directory / body["source"][0]).resolve()
        variables = named(parse(module_dir).get("variable", []))
        arguments = {k for k in body if not k.startswith("__") and k not in ("source", "for_each", "depends_on")}
        assert arguments <= set(variables), (
            f"{directory.name}: module {call} has no {sorted(arguments - set(variables))}"
        )
        required = {n for n, v in variables.items() if "default" not in v}
        assert required <= arguments, f"{directory.name}: module {call} misses {sorted(required - arguments)}"


@pytest.mark.parametrize("directory", ROOTS, ids=lambda p: p.name)
def test_each_environment_has_its_own_encrypted_locked_state(directory: Path) -> None:
    (terraform,) = parse(directory)["terraform"]
    (backend,) = terraform["backend"]
    s3 = backend["s3"]
    assert s3["encrypt"] == [True] and s3["use_lockfile"] == [True]
    assert s3["key"] == [f"{directory.name}/terraform.tfstate"]
    (platform,) = [b for b in parse(directory)["module"] if "platform" in b]
    assert platform["platform"]["environment"] == [directory.name]


def test_gpu_nodes_are_tainted_and_labelled() -> None:
    platform = named(parse(TERRAFORM / "modules" / "platform")["module"])
    gpu = platform["gpu_nodes"]
    assert gpu["ami_type"] == ["AL2023_x86_64_NVIDIA"] and gpu["name"] == ["gpu"]
    assert "nvidia.com/gpu" in json.dumps(gpu["taints"]) and "NoSchedule" in json.dumps(gpu["taints"])
    assert platform["cpu_nodes"]["name"] == ["cpu"]  # the chart's creatormesh.io/node-pool: cpu / gpu
    chart = (ROOT / "charts" / "creatormesh" / "values.yaml").read_text()
    assert "creatormesh.io/node-pool: gpu" in chart and "key: nvidia.com/gpu, operator: Equal, value: present" in chart


def test_media_bucket_is_private_and_encrypted() -> None:
    text = source_text(TERRAFORM / "modules" / "object-storage")
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert re.search(rf"{setting}\s*=\s*true", text), setting
    assert 'sse_algorithm     = "aws:kms"' in text and "aws:SecureTransport" in text


def terraform_binary() -> str:
    exe = shutil.which("terraform") or shutil.which("tofu")
    if exe is None:
        pytest.skip("no terraform (or tofu) binary on this machine: the registries here do not ship one")
    return exe


def test_terraform_fmt() -> None:
    out = subprocess.run([terraform_binary(), "fmt", "-check", "-recursive", str(TERRAFORM)], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("directory", ROOTS, ids=lambda p: p.name)
def test_terraform_validate(tmp_path: Path, directory: Path) -> None:
    exe = terraform_binary()
    mirror = os.environ.get("TF_PLUGIN_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("terraform validate needs the AWS provider in a local mirror (TF_PLUGIN_MIRROR); never downloaded")
    work = tmp_path / "tf"
    shutil.copytree(TERRAFORM, work)
    root = work / "environments" / directory.name
    init = [exe, f"-chdir={root}", "init", "-backend=false", "-input=false", f"-plugin-dir={mirror}"]
    for cmd in (init, [exe, f"-chdir={root}", "validate", "-no-color"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
