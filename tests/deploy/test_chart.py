"""charts/creatormesh rendered with real Helm for every environment in argocd/environments, then checked with real
validators: helm lint --strict, the values schema, kubernetes-validate (strict, pinned Kubernetes version) for the
built-in kinds, and the CRD schemas of Argo Rollouts, Istio, Strimzi, KEDA, Prometheus Operator and Gateway API for
the custom resources — and every kind must have gone through one of them."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from .render import CHART, KUBE_VERSION, environment_values, environments, is_custom, merge, render, validate_custom

ENVS = environments()
#: Built-in kinds the chart may render; anything else must be a custom resource with a schema.
CORE_KINDS = {
    "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "HorizontalPodAutoscaler", "Deployment",
}  # fmt: skip
#: Custom resource kinds every environment renders (so their validation cannot silently fall away).
EXPECTED_CUSTOM = {
    "Rollout", "AnalysisTemplate", "ServiceMonitor", "ScaledObject", "VirtualService", "DestinationRule",
}  # fmt: skip


@pytest.fixture(scope="module", params=ENVS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    values = environment_values(request.param)
    return request.param, values, render(values)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_there_are_three_environments() -> None:
    assert ENVS == ["canary", "production", "staging"]


def test_schema_and_strict_lint_pass(rendered: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> None:
    import helm_python as helm

    env, values, _ = rendered
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(chart.merge_values(values))
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], (env, report)


def test_builtin_kinds_are_valid_kubernetes(rendered: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> None:
    env, _, objects = rendered
    core = [o for o in objects if not is_custom(o)]
    assert {o["kind"] for o in core} <= CORE_KINDS, env
    for obj in core:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)  # raises ValidationError with the path


def test_custom_resources_match_their_crd_schemas(rendered: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> None:
    env, _, objects = rendered
    custom = [o for o in objects if is_custom(o)]
    report = validate_custom(custom)
    assert len(report) == len(custom)
    unchecked = [(r["kind"], r["name"], r["errors"]) for r in report if not r["validated"]]
    assert unchecked == [], f"{env}: no schema for {unchecked}"
    invalid = [(r["kind"], r["name"], r["errors"]) for r in report if r["errors"]]
    assert invalid == [], f"{env}: {invalid}"
    assert {r["kind"] for r in report} >= EXPECTED_CUSTOM, env


def test_the_crd_validator_catches_mistakes() -> None:
    """The validator is not a pass-through: wrong types and missing required fields are reported."""
    broken = [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"},
         "spec": {"strategy": {"canary": {"steps": [{"setWeight": "five"}]}}, "template": {}}},
        {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "s"}, "spec": {}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
    ]  # fmt: skip
    report = validate_custom(broken)
    assert "setWeight must be integer" in report[0]["errors"][0]
    assert any("scaleTargetRef" in e for e in report[1]["errors"])
    assert not report[2]["validated"] and "no schema package" in report[2]["errors"][0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_workloads_are_hardened(rendered: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> None:
    env, _, objects = rendered
    workloads = by_kind(objects, "Rollout") + by_kind(objects, "Deployment")
    assert workloads
    pdbs = by_kind(objects, "PodDisruptionBudget")
    policies = by_kind(objects, "NetworkPolicy")
    deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1 and deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"], env
    for w in workloads:
        name = w["metadata"]["name"]
        labels = w["spec"]["template"]["metadata"]["labels"]
        pod = pod_spec(w)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True, name
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, (name, probe)
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part]), (name, part)
            if w["kind"] == "Rollout":  # the kit's services: native gRPC probes on the standard health service
                assert all("grpc" in c[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")), name
            gpus = int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
            if gpus:
                assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                        "effect": "NoSchedule"} in pod["tolerations"], name  # fmt: skip
                assert pod["nodeSelector"] == {"creatormesh.io/node-pool": "gpu"}, name
            else:
                assert "tolerations" not in pod or not any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
        assert any(selects(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs), f"{name}: no PDB"
        opened = [p for p in policies if p["spec"].get("ingress") and p["spec"].get("egress")]
        assert any(selects(p["spec"]["podSelector"]["matchLabels"], labels) for p in opened), f"{name}: no flows"
        assert selects(deny[0]["spec"]["podSelector"]["matchLabels"], labels), f"{name}: not under default deny"


def test_canary_steps_and_analysis(rendered: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> None:
    _, values, objects = rendered
    services = merge(render_defaults(), values)["services"]
    templates = {t["metadata"]["name"] for t in by_kind(objects, "AnalysisTemplate")}
    assert templates == {"grpc-error-rate", "grpc-p99-latency", "consumer-lag"}
    for rollout in by_kind(objects, "Rollout"):
        name = rollout["metadata"]["name"]
        svc = services[name.replace("-", "_")]
        canary = rollout["spec"]["strategy"]["canary"]
        steps = canary["steps"]
        assert [s["setWeight"] for s in steps if "setWeight" in s] == [5, 25, 50], name  # then 100 %
        for i, step in enumerate(steps):
            if "setWeight" in step:
                assert "pause" in steps[i + 1] and "analysis" in steps[i + 2], (name, i)
        used = {t["templateName"] for s in steps if "analysis" in s for t in s["analysis"]["templates"]}
        assert used <= templates
        if svc["rollout"] == "traffic":
            assert "trafficRouting" in canary and "grpc-p99-latency" in used, name
        else:
            assert "trafficRouting" not in canary and "consumer-lag" in used, name
        if svc["consumes"]:
            assert "consumer-lag" in used, name


def render_defaults() -> dict[str, Any]:
    import helm_python as helm

    return helm.Chart.load(str(CHART)).values


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"global": {"trafficRouting": "linkerd"}}, "/global/trafficRouting"),
        ({"services": {"ranking": {"rollout": "sometimes"}}}, "/services/ranking/rollout"),
        ({"services": {"ranking": {"gpu": -1}}}, "/services/ranking/gpu"),
        ({"services": {"ranking": {"replica": 3}}}, "replica"),
        ({"services": {"ranking": {"consumes": ["no.such.topic"]}}}, "/services/ranking/consumes/0"),
        ({"global": {"image": {"tag": "latest"}}}, "/global/image/tag"),
        ({"global": {"kafka": {"mode": "external", "bootstrap": ""}}}, "/global/kafka/bootstrap"),
        ({"global": {"podSecurityContext": {"runAsNonRoot": False}}}, "/global/podSecurityContext/runAsNonRoot"),
        ({"services": {"video_diffusion": {"autoscaling": {"lagThreshold": 0}}}}, "autoscaling"),
    ],
)
def test_a_bad_values_file_is_rejected(override: dict[str, Any], message: str) -> None:
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.render(merge(environment_values("staging"), override), name="creatormesh", namespace="x")
    assert message in str(caught.value)


def test_gateway_api_option_renders_valid_grpcroutes() -> None:
    values = merge(environment_values("production"), {"global": {"trafficRouting": "gatewayAPI"}})
    objects = render(values)
    routes = by_kind(objects, "GRPCRoute")
    traffic = [r for r in by_kind(objects, "Rollout") if "trafficRouting" in r["spec"]["strategy"]["canary"]]
    assert routes and len(routes) == len(traffic) and not by_kind(objects, "VirtualService")
    services = {s["metadata"]["name"] for s in by_kind(objects, "Service")}
    for r in traffic:
        canary = r["spec"]["strategy"]["canary"]
        assert {canary["stableService"], canary["canaryService"]} <= services
        assert canary["trafficRouting"]["plugins"]["argoproj-labs/gatewayAPI"]["grpcRoute"] == r["metadata"]["name"]
    report = validate_custom([o for o in objects if is_custom(o)])
    assert all(r["validated"] and not r["errors"] for r in report), [r for r in report if r["errors"]]


def test_external_kafka_renders_no_strimzi_objects() -> None:
    objects = render(environment_values("canary"))
    assert not {"Kafka", "KafkaTopic", "KafkaNodePool"} & {o["kind"] for o in objects}
    env = {e["name"]: e.get("value") for e in pod_spec(by_kind(objects, "Rollout")[0])["containers"][0]["env"]}
    assert env["CREATORMESH_KAFKA_BOOTSTRAP"] == "creatormesh-kafka-bootstrap.creatormesh-production.svc:9092"


def test_strimzi_topics_cover_every_topic_and_dlq() -> None:
    from creatormesh.common import topics

    objects = render(environment_values("production"))
    names = {t["spec"]["topicName"] for t in by_kind(objects, "KafkaTopic")}
    mesh = set(topics.PAYLOADS) - {topics.SELFCHECK}  # the kit's own self-check topic is not deployed
    assert mesh | {topics.dlq(t) for t in mesh} == names


def test_consumed_topics_match_the_services_handlers() -> None:
    """values' `consumes` (lag analysis, KEDA) is what each service's code really subscribes to."""
    from creatormesh.common.plugins import discover, resolve
    from creatormesh.common.server import Runtime
    from creatormesh.common.settings import KitSettings

    services = render_defaults()["services"]
    plugins = discover()
    for name, svc in services.items():
        service = resolve(plugins[name].service)(Runtime(settings=KitSettings()))
        assert sorted(service.handlers()) == sorted(svc["consumes"]), name


def test_a_service_can_have_its_own_ports() -> None:
    values = merge(environment_values("production"), {"services": {"ranking": {"ports": {"grpc": 50061}}}})
    objects = render(values)
    rollout = next(o for o in objects if o["kind"] == "Rollout" and o["metadata"]["name"] == "ranking")
    container = pod_spec(rollout)["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 50061, "metrics": 9464}
    assert container["readinessProbe"]["grpc"]["port"] == 50061
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CREATORMESH_GRPC_PORT"] == "50061"
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "ranking")
    assert service["spec"]["ports"][0]["port"] == 50061
    other = next(o for o in objects if o["kind"] == "Rollout" and o["metadata"]["name"] == "allocation")
    assert pod_spec(other)["containers"][0]["ports"][0]["containerPort"] == 50051


def test_env_names_in_values_are_settings_the_services_read() -> None:
    """Every CREATORMESH_* variable values.yaml (or an environment) sets for a service is a field of the kit's or
    that service's settings (CREATORMESH_RANKING_MODEL_DIR was silently ignored: the field is model_path)."""
    from creatormesh.common.plugins import discover, resolve
    from creatormesh.common.settings import KitSettings

    plugins = discover()
    for values in [render_defaults(), *(merge(render_defaults(), environment_values(env)) for env in ENVS)]:
        for name, svc in values["services"].items():
            known = {f"CREATORMESH_{field.upper()}" for field in KitSettings.model_fields}
            for settings in map(resolve, plugins[name].settings):
                prefix = settings.model_config.get("env_prefix", "")
                known |= {f"{prefix}{field}".upper() for field in settings.model_fields}
            assert set(svc.get("env") or {}) <= known, (name, sorted(set(svc["env"]) - known))


SERVING_ON = {"services": {"ranking": {"serving": {"enabled": True}}}}
#: What the schema requires of an enabled front besides `enabled` (values.yaml gives ranking's).
FRONT = {"image": {}, "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1Gi"}}}


def ranking_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return pod_spec(next(o for o in objects if o["kind"] == "Rollout" and o["metadata"]["name"] == "ranking"))


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("env", ENVS)
def test_ranking_serving_off_renders_what_it_did_before(env: str) -> None:
    """Off (the default), the ranking pod is the Python container alone, and an explicit `enabled: false` renders
    exactly the same manifests as no serving key at all."""
    values = environment_values(env)
    assert render_defaults()["services"]["ranking"]["serving"]["enabled"] is False
    objects = render(values)
    off = {"services": {"ranking": {"serving": {"enabled": False, "backendPort": 50099}}}}
    assert render(merge(values, off)) == objects
    assert render(merge(values, {"services": {"ranking": {"serving": None}}})) == objects  # null: Helm drops the key
    pod = ranking_pod(objects)
    (container,) = pod["containers"]
    assert container["name"] == "ranking" and container["image"].split("/")[-1].startswith("ranking:")
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 50051, "metrics": 9464}
    assert all(container[p]["grpc"]["port"] == 50051 for p in ("startupProbe", "readinessProbe", "livenessProbe"))
    variables = env_of(container)
    assert variables["CREATORMESH_GRPC_PORT"] == "50051" and variables["CREATORMESH_GRPC_HOST"] == "0.0.0.0"
    assert "CREATORMESH_RANKING_BACKEND" not in variables and "CREATORMESH_DRAIN_DELAY_SECONDS" not in variables
    assert variables["CREATORMESH_RANKING_MODEL_PATH"] == "/models/ranking"


@pytest.mark.parametrize("env", ENVS)
def test_ranking_serving_on_puts_the_compiled_front_on_the_grpc_port(env: str) -> None:
    values = merge(environment_values(env), SERVING_ON)
    objects = render(values)
    pod = ranking_pod(objects)
    python, serving = pod["containers"]
    full = merge(render_defaults(), values)
    registry, tag = full["global"]["image"]["registry"], full["global"]["image"]["tag"]
    assert python["name"] == "ranking" and python["image"] == f"{registry}/ranking:{tag}"
    assert serving["name"] == "ranking-serving" and serving["image"] == f"{registry}/ranking-serving:{tag}"
    assert "args" not in serving and "command" not in serving  # the image's ENTRYPOINT: ranking-serving serve
    # the Service's targetPort `grpc` (and so every caller) reaches the front; the Python container moves to 50052
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "ranking")
    assert service["spec"]["ports"][0] == {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP",
                                           "appProtocol": "grpc"}  # fmt: skip
    assert {p["name"]: p["containerPort"] for p in serving["ports"]} == {"grpc": 50051}
    assert {p["name"]: p["containerPort"] for p in python["ports"]} == {"grpc-backend": 50052, "metrics": 9464}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):  # gRPC health, each container its own port
        assert serving[probe]["grpc"] == {"port": 50051} and python[probe]["grpc"] == {"port": 50052}, probe
    front, backend = env_of(serving), env_of(python)
    assert front["CREATORMESH_GRPC_HOST"] == "0.0.0.0" and front["CREATORMESH_GRPC_PORT"] == "50051"
    assert front["CREATORMESH_RANKING_BACKEND"] == "127.0.0.1:50052"
    # the kubelet probes the Python container on the pod's address, so it still listens on every interface
    assert backend["CREATORMESH_GRPC_HOST"] == "0.0.0.0" and backend["CREATORMESH_GRPC_PORT"] == "50052"
    assert backend["CREATORMESH_METRICS_PORT"] == "9464" and backend["CREATORMESH_DRAIN_DELAY_SECONDS"] == "20"
    # the same ranking settings and checkpoint; the Redis URL from the same Secret (ranking-serving reads it from
    # its environment, the kit from the mounted file)
    ranking_env = {k: v for k, v in backend.items() if k.startswith("CREATORMESH_RANKING_")}
    assert ranking_env and ranking_env.items() <= front.items()
    assert front["CREATORMESH_RANKING_MODEL_PATH"] == "/models/ranking"
    redis = full["global"]["redis"]
    assert front["CREATORMESH_REDIS_URL"] == {"secretKeyRef": {"name": redis["secretName"], "key": redis["key"]}}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in (python, serving):
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/models"]["name"] == "models" and mounts["/models"]["readOnly"] is True, container["name"]
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == full["models"]["claimName"]
    assert serving["resources"] == full["services"]["ranking"]["serving"]["resources"]
    for obj in objects:  # still valid Kubernetes; the hardening checks (all containers) are the ones above
        if not is_custom(obj):
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    test_workloads_are_hardened((env, values, objects))
    # nothing else changes: the other services' workloads are as with the front off
    off = render(environment_values(env))
    changed = [(o["kind"], o["metadata"]["name"]) for o in objects if o not in off]
    assert changed == [("Rollout", "ranking")]


def test_ranking_serving_options() -> None:
    values = merge(environment_values("staging"), SERVING_ON)
    custom = {"services": {"ranking": {"serving": {"backendPort": 50070, "image": {"tag": "0.2.0-rc1"}},
                                       "env": {"CREATORMESH_DRAIN_DELAY_SECONDS": "5"}}}}  # fmt: skip
    python, serving = ranking_pod(render(merge(values, custom)))["containers"]
    assert serving["image"].endswith("/ranking-serving:0.2.0-rc1")
    assert env_of(serving)["CREATORMESH_RANKING_BACKEND"] == "127.0.0.1:50070"
    assert env_of(python)["CREATORMESH_GRPC_PORT"] == "50070" and python["readinessProbe"]["grpc"]["port"] == 50070
    assert [e for e in python["env"] if e["name"] == "CREATORMESH_DRAIN_DELAY_SECONDS"] == [
        {"name": "CREATORMESH_DRAIN_DELAY_SECONDS", "value": "5"}  # the service's own setting, once
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"services": {"allocation": {"serving": {"enabled": True, **FRONT}}}}, "only ranking"),
        ({"services": {"ranking": {"serving": {"enabled": True, "backendPort": 50051}}}}, "backendPort 50051"),
        ({"services": {"ranking": {"serving": {"enabled": True, "backendPort": 9464}}}}, "backendPort 9464"),
    ],
)
def test_a_bad_serving_setup_fails_to_render(override: dict[str, Any], message: str) -> None:
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmError) as caught:
        chart.render(merge(environment_values("staging"), override), name="creatormesh", namespace="x")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"services": {"ranking": {"serving": {"enabled": "yes"}}}}, "/services/ranking/serving/enabled"),
        ({"services": {"ranking": {"serving": {"enabled": True, "port": 1}}}}, "'port' not allowed"),
        ({"services": {"ranking": {"serving": {"backendPort": 70000}}}}, "/services/ranking/serving/backendPort"),
        ({"services": {"ranking": {"serving": {"resources": {"limits": {"memory": "lots"}}}}}}, "/limits/memory"),
    ],
)
def test_a_bad_serving_value_is_rejected_by_the_schema(override: dict[str, Any], message: str) -> None:
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.render(merge(environment_values("staging"), override), name="creatormesh", namespace="x")
    assert message in str(caught.value)
