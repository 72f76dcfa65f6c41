"""The images' Dockerfiles: hadolint finds nothing in either. The service image (root Dockerfile)'s final stage runs
one service as a non-root user with the kit's ports declared; the ranking service's compiled serving front
(services/ranking/serving/Dockerfile) builds from protos/ and its own directory on a pinned Debian base and runs
`ranking-serving serve` as a non-root user. (No Docker daemon on the CI machine: the images themselves are built by
the image pipeline; docs/deploy.md.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .tools import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"
SERVING_DOCKERFILE = ROOT / "services" / "ranking" / "serving" / "Dockerfile"


def final_stage(dockerfile: Path = DOCKERFILE) -> list[str]:
    text = dockerfile.read_text()
    return text[text.rindex("\nFROM ") :].splitlines()


def instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, one per entry: comments dropped, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", re.sub(r"(?m)^\s*#.*\n", "", dockerfile.read_text()))
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, SERVING_DOCKERFILE], ids=["service", "ranking-serving"])
def test_hadolint_is_clean(dockerfile: Path) -> None:
    out = subprocess.run([tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_hadolint_is_not_a_pass_through(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    out = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "DL3007" in out.stdout and "DL3002" in out.stdout
    assert "DL3008" in out.stdout and "DL3015" in out.stdout  # unpinned apt packages, recommends: what apt-get may do


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


def test_serving_image_base_is_pinned_debian() -> None:
    steps = instructions(SERVING_DOCKERFILE)
    (base,) = [s.split("=", 1)[1] for s in steps if s.startswith("ARG DEBIAN_IMAGE=")]
    assert re.fullmatch(r"debian:12\.\d+-slim", base), base  # bookworm, an exact point release
    froms = [s for s in steps if s.startswith("FROM ")]
    assert froms == ["FROM ${DEBIAN_IMAGE} AS builder", "FROM ${DEBIAN_IMAGE} AS final"]
    assert "latest" not in SERVING_DOCKERFILE.read_text()


def test_serving_image_builds_from_protos_and_the_serving_dir_only() -> None:
    steps = instructions(SERVING_DOCKERFILE)
    builder = steps[: next(i for i, s in enumerate(steps) if s.endswith(" AS final"))]
    copies = [s for s in builder if s.startswith(("COPY ", "ADD "))]
    # CMake finds the protos at ../../../protos from its source dir: the repo's layout is kept under WORKDIR
    assert copies == ["COPY protos/ protos/", "COPY services/ranking/serving/ services/ranking/serving/"]
    build = next(s for s in builder if "cmake -S" in s)
    assert "cmake -S services/ranking/serving" in build and "-DCMAKE_BUILD_TYPE=Release" in build
    assert "--target ranking-serving" in build
    install = next(s for s in builder if "apt-get install" in s)
    for package in ("g++", "cmake", "protobuf-compiler-grpc", "libgrpc++-dev", "libfaiss-dev", "libhiredis-dev"):
        assert f" {package}=" in install, package  # every build dependency, version-pinned


def test_serving_final_stage_runs_unprivileged_without_a_toolchain() -> None:
    lines = instructions(SERVING_DOCKERFILE)
    final = lines[next(i for i, s in enumerate(lines) if s.endswith(" AS final")) :]
    users = [s.split()[1] for s in final if s.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "--uid 10001" in "\n".join(final)
    assert final[-1] == 'ENTRYPOINT ["ranking-serving", "serve"]'
    assert "EXPOSE 50051" in final and "STOPSIGNAL SIGTERM" in final
    env = next(s for s in final if s.startswith("ENV "))
    for default in ("CREATORMESH_GRPC_HOST=0.0.0.0", "CREATORMESH_GRPC_PORT=50051",
                    "CREATORMESH_RANKING_BACKEND=127.0.0.1:50052"):  # fmt: skip
        assert default in env.split(), default
    assert [s for s in final if s.startswith("COPY ")] == [
        "COPY --from=builder /out/ranking-serving /usr/local/bin/ranking-serving"
    ]
    runtime = next(s for s in final if "apt-get install" in s)
    assert "--no-install-recommends" in runtime
    for package in ("g++", "cmake", "-dev=", "protobuf-compiler"):
        assert package not in runtime, package  # no compiler, headers or code generators at run time
    for package in ("libgrpc++1.51=", "libprotobuf32=", "libhiredis0.14=", "libgomp1=", "libblas3=", "liblapack3="):
        assert package in runtime, package


GLOB = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def dockerignored(path: str, rules: list[str]) -> bool:
    """Whether .dockerignore's ``rules`` leave ``path`` out of the build context (last matching rule wins; a rule
    that matches a parent directory matches what is in it; ``**`` spans directories)."""
    excluded = False
    for rule in rules:
        negated, pattern = rule.startswith("!"), rule.lstrip("!").strip("/")
        tokens = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
        regex = "".join(GLOB.get(t) or re.escape(t) for t in tokens)
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*" and "!services/" in lines and "**/tests/" in lines
    rules = [line for line in lines if line.strip() and not line.startswith("#")]
    # what the ranking-serving build copies is in the context; the rest of the repo and build trees are not
    tracked = subprocess.run(["git", "ls-files", "protos/creatormesh", "services/ranking/serving"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    needed = [*tracked, "services/ranking/serving/src/server.cc", "services/ranking/serving/CMakeLists.txt"]
    assert [path for path in needed if dockerignored(path, rules)] == []
    for path in ("charts/creatormesh/values.yaml", "services/ranking/tests/test_compiled.py", ".creatormesh/build/x",
                 "services/ranking/serving/.creatormesh/build/CMakeCache.txt", "docs/deploy.md"):  # fmt: skip
        assert dockerignored(path, rules), path
