"""argocd/: the AppProject and ApplicationSet against Argo CD's CRD schemas; the ApplicationSet's Go template
rendered (with Helm's Go template engine and Sprig, as Argo CD uses) for every environment x component, each
generated Application validated and checked; and the promotion script on a scratch git repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .render import CHART, ENVIRONMENTS, ROOT, environment_values, environments, release, render, validate_custom

ARGOCD = ROOT / "argocd"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ARGOCD / name).read_text())
    return data


def applications(tmp_path: Path) -> list[dict[str, Any]]:
    """What the ApplicationSet generates: its matrix (environments' release files x components) through its
    template. Parameters become Helm values, so `{{ .x }}` reads `{{ .Values.x }}`."""
    import helm_python as helm

    appset = load("applicationset.yaml")
    text = yaml.safe_dump(appset["spec"]["template"], sort_keys=False)
    text = re.sub(r"\{\{\s*\.", "{{ .Values.", text)
    chart = tmp_path / "appset"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: appset\nversion: 0.0.1\n")
    (chart / "templates" / "application.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\n" + text
    )
    matrix = appset["spec"]["generators"][0]["matrix"]["generators"]
    pattern = matrix[0]["git"]["files"][0]["path"]
    files = sorted(ROOT.glob(pattern))
    assert [f.parent.name for f in files] == environments()
    components = [e["component"] for e in matrix[1]["list"]["elements"]]
    loaded = helm.Chart.load(str(chart))
    out = []
    for f in files:
        for component in components:
            params = {**release(f.parent.name), "component": component,
                      "path": {"basename": f.parent.name, "path": str(f.parent.relative_to(ROOT))}}  # fmt: skip
            (manifest,) = loaded.render(params, name="appset", namespace="argocd").values()
            assert "<no value>" not in manifest, manifest
            out.append(yaml.safe_load(manifest))
    return out


def test_project_and_applicationset_match_argo_cd_schemas() -> None:
    report = validate_custom([load("project.yaml"), load("applicationset.yaml")])
    assert all(r["validated"] and not r["errors"] for r in report), report
    appset = load("applicationset.yaml")["spec"]
    assert appset["goTemplate"] is True and appset["goTemplateOptions"] == ["missingkey=error"]


def test_generated_applications(tmp_path: Path) -> None:
    apps = applications(tmp_path)
    services = sorted(yaml.safe_load((CHART / "values.yaml").read_text())["services"])
    assert len(apps) == len(environments()) * (len(services) + 1)
    report = validate_custom(apps)
    assert all(r["validated"] and not r["errors"] for r in report), [r for r in report if r["errors"]]
    project = load("project.yaml")["spec"]
    destinations = {(d["server"], d["namespace"]) for d in project["destinations"]}
    names = [a["metadata"]["name"] for a in apps]
    assert len(set(names)) == len(names)
    for app in apps:
        spec, env = app["spec"], app["metadata"]["labels"]["creatormesh.io/environment"]
        source = spec["source"]
        assert spec["project"] == "creatormesh" and source["repoURL"] in project["sourceRepos"]
        assert (spec["destination"]["server"], spec["destination"]["namespace"]) in destinations
        assert source["targetRevision"] == str(release(env)["revision"])
        (values_file,) = source["helm"]["valueFiles"]
        assert (ROOT / source["path"] / values_file).resolve() == ENVIRONMENTS / env / "values.yaml"
        params = {p["name"]: p["value"] for p in source["helm"]["parameters"]}
        assert params["global.image.tag"] == str(release(env)["version"])
        assert params["global.component"] in [*services, "shared"]
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert release("staging")["revision"] == "HEAD"  # staging follows main; the others are pinned by promotion


@pytest.mark.parametrize("env", environments())
def test_components_partition_the_chart(env: str) -> None:
    """The per-component Applications together deploy exactly what the whole chart renders, each object once."""

    def key(o: dict[str, Any]) -> tuple[str, str]:
        return o["kind"], o["metadata"]["name"]

    whole = sorted(key(o) for o in render(environment_values(env)))
    services = sorted(yaml.safe_load((CHART / "values.yaml").read_text())["services"])
    parts = [key(o) for c in [*services, "shared"] for o in render(environment_values(env, c))]
    assert sorted(parts) == whole
    assert all(render(environment_values(env, c)) for c in [*services, "shared"])


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def scratch_repo(tmp_path: Path) -> Path:
    """A git repository with this one's environments and the promotion script (which works on its own repo)."""
    repo = tmp_path / "repo"
    shutil.copytree(ENVIRONMENTS, repo / "argocd" / "environments")
    shutil.copy(ARGOCD / "promote.py", repo / "argocd" / "promote.py")
    for cmd in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "start"]):
        subprocess.run([*GIT, *cmd], cwd=repo, check=True)
    return repo


def run_promote(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    identity = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        [sys.executable, "argocd/promote.py", *args], cwd=repo, capture_output=True, text=True, check=False,
        env={**os.environ, **identity},
    )  # fmt: skip


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_promotion_pins_the_target_and_commits(tmp_path: Path) -> None:
    repo = scratch_repo(tmp_path)
    head = git_out(repo, "rev-parse", "HEAD")
    out = run_promote(repo, "staging", "canary")
    assert out.returncode == 0, out.stderr
    canary = yaml.safe_load((repo / "argocd/environments/canary/release.yaml").read_text())
    assert canary["revision"] == head and canary["version"] == release("staging")["version"]
    assert git_out(repo, "log", "-1", "--format=%s", "--name-only").splitlines() == [
        f"Promote canary to {canary['version']} at {head[:12]} (from staging)", "",
        "argocd/environments/canary/release.yaml",
    ]  # fmt: skip
    text = (repo / "argocd/environments/canary/release.yaml").read_text()
    assert text.startswith("# What Argo CD deploys to canary")  # comments kept
    assert run_promote(repo, "canary", "production").returncode == 0
    production = yaml.safe_load((repo / "argocd/environments/production/release.yaml").read_text())
    assert production["revision"] == head  # the canary's pinned revision, not main's newer HEAD
    commits = git_out(repo, "rev-list", "--count", "HEAD")
    again = run_promote(repo, "canary", "production")
    assert again.returncode == 0 and "already runs" in again.stdout
    assert git_out(repo, "rev-list", "--count", "HEAD") == commits  # nothing committed
    bumped = run_promote(repo, "canary", "production", "--version", "0.2.0")
    assert bumped.returncode == 0, bumped.stderr
    production = yaml.safe_load((repo / "argocd/environments/production/release.yaml").read_text())
    assert (production["version"], production["revision"]) == ("0.2.0", head)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("canary", "staging"), "staging follows main"),
        (("staging", "qa"), "unknown environment"),
        (("canary", "canary"), "same environment"),
    ],
)
def test_promotion_refusals(tmp_path: Path, args: tuple[str, str], message: str) -> None:
    out = run_promote(scratch_repo(tmp_path), *args)
    assert out.returncode == 2 and message in out.stderr


def test_promotion_refuses_a_revision_without_the_target(tmp_path: Path) -> None:
    repo = scratch_repo(tmp_path)
    subprocess.run(["git", "rm", "-q", "-r", "argocd/environments/production/values.yaml"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"], cwd=repo, check=True
    )
    out = run_promote(repo, "staging", "production")
    assert out.returncode == 2 and "cannot run production" in out.stderr
