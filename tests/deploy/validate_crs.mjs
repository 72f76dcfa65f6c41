// Validates custom resources (JSON array on stdin) against the CRD schemas compiled in the @kubernetes-models packages.
import { readFileSync } from "node:fs";

const PACKAGES = {
  "argoproj.io": (kind) => (["Application", "ApplicationSet", "AppProject"].includes(kind) ? "argo-cd" : "argo-rollouts"),
  "kafka.strimzi.io": () => "strimzi-kafka-operator",
  "keda.sh": () => "keda",
  "networking.istio.io": () => "istio",
  "monitoring.coreos.com": () => "prometheus-operator",
  "gateway.networking.k8s.io": () => "gateway-api",
};

const objects = JSON.parse(readFileSync(0, "utf8"));
const report = [];
for (const obj of objects) {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const entry = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata?.name ?? "", validated: false, errors: [] };
  const pkg = PACKAGES[group]?.(obj.kind);
  if (!pkg) {
    entry.errors.push(`no schema package for ${obj.apiVersion}`);
    report.push(entry);
    continue;
  }
  let model;
  try {
    model = (await import(`@kubernetes-models/${pkg}/${group}/${version}/${obj.kind}`))[obj.kind];
  } catch (err) {
    entry.errors.push(`no schema for ${obj.apiVersion} ${obj.kind} in @kubernetes-models/${pkg}: ${err.message}`);
    report.push(entry);
    continue;
  }
  try {
    new model(obj).validate();
    entry.validated = true;
  } catch (err) {
    entry.validated = true;
    const details = err.errors ?? [err];
    for (const e of details) entry.errors.push(`${e.instancePath ?? ""} ${e.message ?? String(e)} ${e.params ? JSON.stringify(e.params) : ""}`.trim());
  }
  report.push(entry);
}
process.stdout.write(JSON.stringify(report));
