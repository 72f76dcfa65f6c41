"""checkov (offline, --skip-download) on the chart's rendered manifests for every environment: 0 failed checks,
every skip justified in the chart. checkov's Kubernetes checks look at built-in workload kinds only, so each Argo
Rollout is also scanned as the Deployment with the same pod template (what the Rollout's ReplicaSets run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .render import environment_values, environments, merge, render
from .tools import checkov, failures


def as_deployment(rollout: dict[str, Any]) -> dict[str, Any]:
    spec = rollout["spec"]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": rollout["metadata"],
        "spec": {"replicas": spec.get("replicas", 2), "selector": spec["selector"], "template": spec["template"]},
    }  # fmt: skip


@pytest.mark.parametrize("env", environments())
def test_rendered_manifests_pass_checkov(tmp_path: Path, env: str) -> None:
    objects = render(environment_values(env))
    shadows = [as_deployment(o) for o in objects if o["kind"] == "Rollout"]
    (tmp_path / f"{env}.yaml").write_text(yaml.safe_dump_all([*objects, *shadows], sort_keys=False))
    report = checkov(tmp_path, "kubernetes")
    assert failures(report) == []
    summary = report["summary"]
    assert summary["passed"] > 100 and summary["parsing_errors"] == 0
    skipped = report["results"].get("skipped_checks", [])
    assert all(s["check_id"] in ("CKV_K8S_43", "CKV_K8S_15") for s in skipped)  # only the justified image skips
    workloads = {c["resource"] for c in report["results"]["passed_checks"] if c["resource"].startswith("Deployment.")}
    assert len(workloads) >= len(shadows)  # the Rollouts' pods really were checked


def test_ranking_serving_front_passes_checkov(tmp_path: Path) -> None:
    """With ranking's compiled front on: its container is checked like the others; the one extra skip is its Redis
    URL as a Secret-backed variable (ranking-serving reads no secrets directory), and only on that Rollout."""
    values = merge(environment_values("production"), {"services": {"ranking": {"serving": {"enabled": True}}}})
    objects = render(values)
    shadows = [as_deployment(o) for o in objects if o["kind"] == "Rollout"]
    (tmp_path / "serving.yaml").write_text(yaml.safe_dump_all([*objects, *shadows], sort_keys=False))
    report = checkov(tmp_path, "kubernetes")
    assert failures(report) == []
    skipped = report["results"].get("skipped_checks", [])
    assert all(s["check_id"] in ("CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_35") for s in skipped)
    assert {s["resource"] for s in skipped if s["check_id"] == "CKV_K8S_35"} == {"Deployment.creatormesh.ranking"}


def test_checkov_fails_a_weak_pod(tmp_path: Path) -> None:
    (tmp_path / "weak.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weak", "namespace": "x"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "c", "image": "busybox:latest",
                                          "securityContext": {"privileged": True}}]}}},
    }))  # fmt: skip
    ids = {f.split()[0] for f in failures(checkov(tmp_path, "kubernetes"))}
    assert {"CKV_K8S_16", "CKV_K8S_22", "CKV_K8S_8"} <= ids  # privileged, writable root, no liveness probe
