"""The canary analysis queries, unit-tested with `promtool test rules` on synthetic series: taken from the rendered
AnalysisTemplates (production thresholds), the arguments Argo Rollouts fills in substituted, and each evaluated the
way the template's successCondition reads it — a healthy canary passes, a failing one fails, no traffic passes, and
other pods (stable, other services, client errors, streaming RPCs) do not count."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .render import environment_values, render
from .tools import tool

ARGS = {"namespace": "creatormesh", "service": "ranking", "group": "ranking", "canary-hash": "canary1"}
CONDITION = re.compile(r"^len\(result\) == 0 \|\| isNaN\(result\[0\]\) \|\| result\[0\] <= ([0-9.e+-]+)$")
CANARY = 'namespace="creatormesh", job="ranking", rollouts_pod_template_hash="canary1"'
STABLE = 'namespace="creatormesh", job="ranking", rollouts_pod_template_hash="stable1"'
OTHER = 'namespace="creatormesh", job="allocation", rollouts_pod_template_hash="canary1"'


def promtool() -> str:
    return tool("promtool")  # Debian's prometheus package, extracted into .tools/ by make deploy-tools


def handled(selector: str, code: str, per_minute: int, kind: str = "unary") -> dict[str, str]:
    labels = f'{selector}, grpc_service="s", grpc_method="M", grpc_type="{kind}", grpc_code="{code}"'
    return {"series": f"grpc_server_handled_total{{{labels}}}", "values": f"0+{per_minute}x15"}


def histogram(selector: str, slowest: float, per_minute: int, kind: str = "unary") -> list[dict[str, str]]:
    """Every request in the bucket whose upper bound is ``slowest``."""
    bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    out = []
    for le in bounds:
        full = le == "+Inf" or float(le) >= slowest
        labels = f'{selector}, grpc_service="s", grpc_method="M", grpc_type="{kind}", le="{le}"'
        out.append({"series": f"grpc_server_handling_seconds_bucket{{{labels}}}",
                    "values": f"0+{per_minute if full else 0}x15"})  # fmt: skip
    return out


def lag(group: str, partition: int, value: int) -> dict[str, str]:
    labels = f'namespace="creatormesh", job="x", group="{group}", topic="t", partition="{partition}"'
    return {"series": f"creatormesh_consumer_lag{{{labels}}}", "values": f"{value}x15"}


#: Per template: (case, input series, passes?) — None for "no result at all".
CASES: dict[str, list[tuple[str, list[dict[str, str]], bool | None]]] = {
    "grpc-error-rate": [
        ("healthy", [handled(CANARY, "OK", 420), handled(CANARY, "INVALID_ARGUMENT", 60),
                     handled(STABLE, "INTERNAL", 300), handled(OTHER, "INTERNAL", 300)], True),
        ("failing", [handled(CANARY, "OK", 420), handled(CANARY, "INTERNAL", 60)], False),
        ("failing-unavailable", [handled(CANARY, "OK", 420), handled(CANARY, "UNAVAILABLE", 60)], False),
        ("no-traffic", [handled(STABLE, "OK", 420)], None),
    ],
    "grpc-p99-latency": [
        ("healthy", [*histogram(CANARY, 0.01, 600), *histogram(STABLE, 10, 600),
                     *histogram(CANARY, 10, 600, kind="server_stream")], True),
        ("failing", [*histogram(CANARY, 2.5, 600)], False),
        ("no-traffic", [*histogram(STABLE, 0.01, 600)], None),
    ],
    "consumer-lag": [
        ("healthy", [lag("ranking", 0, 10), lag("ranking", 1, 50), lag("allocation", 0, 99999)], True),
        ("failing", [lag("ranking", 0, 10), lag("ranking", 1, 5000)], False),
        ("no-consumers-yet", [lag("allocation", 0, 5)], True),
    ],
}  # fmt: skip


def templates() -> dict[str, dict[str, Any]]:
    objects = render(environment_values("production"))
    out = {}
    for t in objects:
        if t["kind"] == "AnalysisTemplate":
            (metric,) = t["spec"]["metrics"]
            out[t["metadata"]["name"]] = metric
    return out


def query_of(metric: dict[str, Any]) -> str:
    query: str = metric["provider"]["prometheus"]["query"]
    for name, value in ARGS.items():
        query = query.replace(f"{{{{args.{name}}}}}", value)
    assert "{{" not in query, query
    return " ".join(query.split())


def threshold_of(metric: dict[str, Any]) -> float:
    match = CONDITION.match(metric["successCondition"])
    assert match, f"successCondition changed shape: {metric['successCondition']!r}; update this test's reading of it"
    return float(match.group(1))


def promtool_tests(expectations: dict[str, bool | None] | None = None) -> dict[str, Any]:
    """A promtool test file checking every case; ``expectations`` overrides what a case should give."""
    tests = []
    for name, metric in templates().items():
        query, limit = query_of(metric), threshold_of(metric)
        for case, series, expected in CASES[name]:
            passes = (expectations or {}).get(f"{name}/{case}", expected)
            # successCondition: an empty result passes; otherwise result[0] <= limit (NaN does not occur here).
            expr = query if passes is None else f"({query}) <= bool {limit}"
            samples = [] if passes is None else [{"labels": "{}", "value": 1 if passes else 0}]
            tests.append({
                "name": f"{name}/{case}", "interval": "1m", "input_series": series,
                "promql_expr_test": [{"expr": expr, "eval_time": "10m", "exp_samples": samples}],
            })  # fmt: skip
    return {"rule_files": [], "evaluation_interval": "1m", "tests": tests}


def run_promtool(tmp_path: Path, content: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "canary_test.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True, check=False)


def test_every_template_has_cases() -> None:
    assert set(templates()) == set(CASES)


def test_healthy_passes_failing_fails_no_traffic_passes(tmp_path: Path) -> None:
    out = run_promtool(tmp_path, promtool_tests())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


@pytest.mark.parametrize(
    "case", ["grpc-error-rate/healthy", "grpc-error-rate/failing", "grpc-p99-latency/failing", "consumer-lag/failing"]
)
def test_promtool_catches_a_wrong_expectation(tmp_path: Path, case: str) -> None:
    """The check has teeth: claiming the opposite outcome for one case makes promtool fail on that case."""
    flipped = {case: not dict(((f"{n}/{c}", p) for n, cs in CASES.items() for c, _, p in cs))[case]}
    out = run_promtool(tmp_path, promtool_tests(flipped))
    text = out.stdout + out.stderr
    assert out.returncode != 0 and text.count("exp:") == 1, text  # exactly the flipped case fails
