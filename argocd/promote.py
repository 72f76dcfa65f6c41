"""Promote what runs in one environment to the next: copy its release (image version and the repository revision of
the chart and values) into the target's argocd/environments/<to>/release.yaml and commit that change. Argo CD's
ApplicationSet reads the file at main, so the target environment syncs to the new release once the commit is pushed
— and only then.

    python argocd/promote.py staging canary        # after staging's rollouts are healthy
    python argocd/promote.py canary production     # after the canary environment's analysis passed
    python argocd/promote.py canary production --version 0.2.0   # another image version at the same revision

A staging revision of HEAD is resolved to the commit it means now. Exit status: 0 promoted (or already there),
2 refused (unknown environment, promoting into staging, a revision without the target's values, a dirty file)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = Path("argocd/environments")
FIELD = re.compile(r"^(?P<key>version|revision):\s*(?P<value>[^#\s]+)", re.MULTILINE)


class Refused(Exception):
    pass


def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise Refused(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def read(path: Path) -> dict[str, str]:
    fields = {m["key"]: m["value"].strip("\"'") for m in FIELD.finditer(path.read_text())}
    if set(fields) != {"version", "revision"}:
        raise Refused(f"{path} needs a version and a revision")
    return fields


def write(path: Path, version: str, revision: str) -> None:
    """Replace the two lines, keeping the file's comments and other fields."""
    text = path.read_text()
    text = re.sub(r"^version:.*$", f'version: "{version}"', text, count=1, flags=re.MULTILINE)
    text = re.sub(r"^revision:.*$", f"revision: {revision}", text, count=1, flags=re.MULTILINE)
    path.write_text(text)


def promote(source: str, target: str, repo: Path, version: str | None = None, commit: bool = True) -> str:
    """Promote ``source``'s release to ``target``; returns what happened, one line."""
    envs = repo / ENVIRONMENTS
    known = sorted(p.name for p in envs.iterdir() if (p / "release.yaml").is_file())
    for env in (source, target):
        if env not in known:
            raise Refused(f"unknown environment {env!r}; known: {known}")
    if target == "staging":
        raise Refused("staging follows main (revision HEAD); nothing is promoted into it")
    if source == target:
        raise Refused("source and target are the same environment")
    target_file = envs / target / "release.yaml"
    relative = target_file.relative_to(repo).as_posix()
    if git("status", "--porcelain", "--", relative, cwd=repo):
        raise Refused(f"{relative} has uncommitted changes")
    release = read(envs / source / "release.yaml")
    revision = git("rev-parse", "--verify", f"{release['revision']}^{{commit}}", cwd=repo)
    values = (ENVIRONMENTS / target / "values.yaml").as_posix()
    try:
        git("cat-file", "-e", f"{revision}:{values}", cwd=repo)
    except Refused:
        raise Refused(f"revision {revision[:12]} has no {values}: it cannot run {target}") from None
    version = version or release["version"]
    current = read(target_file)
    if current == {"version": version, "revision": revision}:
        return f"{target} already runs {version} at {revision[:12]}"
    write(target_file, version, revision)
    message = f"Promote {target} to {version} at {revision[:12]} (from {source})"
    if commit:
        git("add", "--", relative, cwd=repo)
        git("commit", "-q", "-m", message, "--", relative, cwd=repo)
    return message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="environment whose release is promoted (staging, canary)")
    parser.add_argument("target", help="environment that gets it (canary, production)")
    parser.add_argument("--version", help="image version to promote (default: the source's)")
    parser.add_argument("--no-commit", action="store_true", help="change the file, do not commit")
    args = parser.parse_args(argv)
    try:
        print(promote(args.source, args.target, ROOT, args.version, commit=not args.no_commit))
    except Refused as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
