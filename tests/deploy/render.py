"""Render the chart the way Helm and Argo CD do, offline: real Helm v4 (the engine bundled in helm-python-sdk), the
chart's values with an environment's values and version files merged over them, in that order."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .tools import ROOT, missing

CHART = ROOT / "charts" / "creatormesh"
ENVIRONMENTS = ROOT / "argocd" / "environments"
KUBE_VERSION = "1.33.0"  # the EKS version terraform/ provisions
NAMESPACE = "creatormesh"


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values files: maps merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def release(env: str) -> dict[str, Any]:
    """argocd/environments/<env>/release.yaml: version, revision, cluster, namespace."""
    data: dict[str, Any] = yaml.safe_load((ENVIRONMENTS / env / "release.yaml").read_text())
    return data


def environment_values(env: str, component: str = "") -> dict[str, Any]:
    """The values Argo CD passes for ``env`` (argocd/applicationset.yaml): the environment's values.yaml, then the
    parameters global.image.tag (the release's version) and global.component."""
    values: dict[str, Any] = yaml.safe_load((ENVIRONMENTS / env / "values.yaml").read_text()) or {}
    return merge(values, {"global": {"image": {"tag": str(release(env)["version"])}, "component": component}})


def environments() -> list[str]:
    return sorted(p.name for p in ENVIRONMENTS.iterdir() if (p / "values.yaml").is_file())


def render(values: dict[str, Any], namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Every object the chart renders with ``values`` (merged over the chart's defaults by Helm)."""
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name="creatormesh", namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    for path in sorted(manifests):
        for doc in yaml.safe_load_all(manifests[path]):
            if doc:
                doc.setdefault("metadata", {}).setdefault("namespace", namespace)
                objects.append(doc)
    return objects


def is_custom(obj: dict[str, Any]) -> bool:
    """A custom resource: its API group has a dot and is not Kubernetes' own (*.k8s.io, Gateway API aside)."""
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return "." in group and (not group.endswith(".k8s.io") or group == "gateway.networking.k8s.io")


def validate_custom(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate custom resources against the CRD schemas compiled in the @kubernetes-models npm packages (Argo
    Rollouts, Argo CD, Strimzi, KEDA, Istio, Prometheus Operator, Gateway API; versions in package.json)."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@kubernetes-models").is_dir():
        missing("CRD schemas need node and the npm packages of package.json (make test installs them)")
        assert node is not None
    proc = subprocess.run(
        [node, str(Path(__file__).with_name("validate_crs.mjs"))],
        input=json.dumps(objects), capture_output=True, text=True, check=False, cwd=ROOT, timeout=120,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"validate_crs.mjs failed: {proc.stderr.strip()[-2000:]}")
    report: list[dict[str, Any]] = json.loads(proc.stdout)
    return report
