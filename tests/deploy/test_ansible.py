"""ansible/: the GPU-node playbook passes `ansible-playbook --syntax-check` and `ansible-lint --offline` with the
production profile, the example inventory resolves, and the play covers every step of preparing a GPU node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from .tools import ROOT, tool, tool_env

ANSIBLE = ROOT / "ansible"
PLAYBOOK = "playbooks/gpu-nodes.yml"


def run(*cmd: str, cwd: Path = ANSIBLE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False, env=tool_env(), timeout=300)


def test_syntax_check() -> None:
    out = run(tool("ansible-playbook"), "--syntax-check", "-i", "inventory/example.yml", PLAYBOOK)
    assert out.returncode == 0, out.stdout + out.stderr


def test_syntax_check_catches_a_broken_play(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("- hosts: all\n  tasks:\n    - name: x\n      ansible.builtin.no_such_module: {}\n")
    out = run(tool("ansible-playbook"), "--syntax-check", "-i", "localhost,", str(bad))
    assert out.returncode != 0 and "no_such_module" in out.stdout + out.stderr


def test_ansible_lint_production_profile() -> None:
    out = run(tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor")
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "0 failure(s), 0 warning(s)" in text, text


def test_inventory_and_play_cover_the_gpu_node() -> None:
    out = run(tool("ansible-inventory"), "-i", "inventory/example.yml", "--list")
    assert out.returncode == 0, out.stderr
    inventory = json.loads(out.stdout)
    assert len(inventory["gpu_nodes"]["hosts"]) == 2
    (play,) = yaml.safe_load((ANSIBLE / PLAYBOOK).read_text())
    assert play["hosts"] == "gpu_nodes" and play["become"] is True
    roles = [r["role"] for r in play["roles"]]
    assert roles == ["nvidia_driver", "containerd", "nvidia_container_toolkit", "dcgm_exporter", "gpu_verify"]
    verify = (ANSIBLE / "roles" / "gpu_verify" / "tasks" / "main.yml").read_text()
    assert "nvidia-smi" in verify and "--gpus" in verify and "DCGM_FI_DEV_GPU_UTIL" in verify
