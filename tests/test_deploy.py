"""The manifests and the Dockerfile, checked with the real tools: there is no cluster or Docker engine
here, so every kustomization is built with kubectl and every object is validated against its schema
(Kubernetes' own OpenAPI schemas, KEDA's and the prometheus-operator's CRDs)."""

import ast
import copy
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator

from helios.adapters import SOURCES
from helios.engine.models import MODELS
from helios.scaler.config.metadata import KEDA_KEYS, MetadataParser
from helios.scaler.config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = Path(__file__).parent / "data/schemas"
K8S_VERSION = "1.32.0"  # the Kubernetes the manifests target; kubernetes-validate bundles its schemas
SKIP_DIRS = {".venv", "build", ".git", "node_modules"}
KUSTOMIZATIONS = sorted(p.parent for p in ROOT.rglob("kustomization.yaml") if not SKIP_DIRS & set(p.parts))
COMPONENTS = [d for d in KUSTOMIZATIONS
              if yaml.safe_load((d / "kustomization.yaml").read_text())["kind"] == "Component"]
BUILDABLE = [d for d in KUSTOMIZATIONS if d not in COMPONENTS]
EXAMPLE_FILES = sorted((ROOT / "manifests/examples").glob("*.yaml"))
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert path, f"{name} is not installed; make test (and .ci/run) install it"
    return path


@functools.cache
def build(directory: Path) -> tuple[dict, ...]:
    result = subprocess.run([tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, f"kubectl kustomize {rel(directory)}: {result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


@functools.cache
def build_component(component: Path, tmp: Path) -> tuple[dict, ...]:
    """A Component cannot be built alone: build it on the base, as an overlay would."""
    overlay = tmp / component.name
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({  # kustomize wants relative paths
        "resources": [os.path.relpath(ROOT / "manifests/base", overlay)],
        "components": [os.path.relpath(component, overlay)]}))
    return build(overlay)


def objects(docs, kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind: str, name: str = "helios") -> dict:
    found = objects(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def example_docs() -> list[tuple[str, dict]]:
    return [(rel(p), d) for p in EXAMPLE_FILES for d in yaml.safe_load_all(p.read_text()) if d]


@functools.cache
def all_objects(tmp: Path) -> list[tuple[str, dict]]:
    """Every object the repository can put in a cluster, labelled with where it comes from."""
    out = [(rel(d), o) for d in BUILDABLE for o in build(d)]
    out += [(rel(c), o) for c in COMPONENTS for o in build_component(c, tmp)]
    return out + example_docs()


# --- Schemas ------------------------------------------------------------------------------------------

def strict(schema):
    """Refuse unknown fields, as the API server does for kubectl's default `--validate=strict`:
    CRD schemas leave additionalProperties open and rely on the server for that."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


OBJECT_META = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
    "namespace": {"type": "string"}, "labels": {"type": "object"}, "annotations": {"type": "object"}}}


@functools.cache
def crd_schema(filename: str) -> dict:
    crd = yaml.safe_load((SCHEMAS / "keda" / filename).read_text())
    schema = copy.deepcopy(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = OBJECT_META  # CRDs leave metadata to the API server
    schema["required"] = ["spec"]
    return strict(schema)


@functools.cache
def prometheus_operator_schema(kind: str) -> dict:
    """The prometheus-operator's CRD schema, as the cloudcoil models (generated from those CRDs) give it."""
    schema = getattr(prometheus_operator, kind).model_json_schema(mode="validation")
    schema["properties"]["metadata"] = OBJECT_META
    return strict(schema)


def gmp_problems(obj: dict) -> list[str]:
    """GKE Managed Prometheus publishes no schema package: check the fields Helios's objects use."""
    spec, problems = obj.get("spec", {}), []
    if obj["kind"] == "PodMonitoring":
        if not spec.get("selector", {}).get("matchLabels"):
            problems.append("spec.selector.matchLabels is required")
        for e in spec.get("endpoints") or [{}]:
            if not isinstance(e.get("port"), (str, int)) or set(e) - {"port", "path", "interval", "timeout", "scheme"}:
                problems.append(f"bad endpoint {e}")
    elif obj["kind"] == "Rules":
        if not spec.get("groups") or set(spec) != {"groups"}:
            problems.append("spec must hold only groups")
    return problems


def schema_problems(obj: dict) -> list[str]:
    group = obj["apiVersion"].rpartition("/")[0]
    if group == "keda.sh":
        filename = {"ScaledObject": "keda.sh_scaledobjects.yaml",
                    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml"}[obj["kind"]]
        validator = jsonschema.Draft7Validator(crd_schema(filename))
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    if group == "monitoring.coreos.com":
        validator = jsonschema.Draft202012Validator(prometheus_operator_schema(obj["kind"]))
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    if group == "monitoring.googleapis.com":
        return gmp_problems(obj)
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"]
    return []


# --- Builds and schemas --------------------------------------------------------------------------------

@pytest.mark.parametrize("directory", BUILDABLE, ids=rel)
def test_every_kustomization_builds(directory):
    docs = build(directory)
    assert docs and all(d["metadata"].get("name") for d in docs)


@pytest.mark.parametrize("component", COMPONENTS, ids=rel)
def test_every_component_builds_on_the_base(component, tmp_path_factory):
    base = {(d["kind"], d["metadata"]["name"]) for d in build(ROOT / "manifests/base")}
    docs = build_component(component, tmp_path_factory.mktemp("components"))
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= base


def test_every_object_validates_against_its_schema(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("components")
    problems = [f"{src}: {o['kind']}/{o['metadata']['name']}: {p}" for src, o in all_objects(tmp)
                for p in schema_problems(o)]
    assert not problems, "\n".join(problems)
    kinds = {o["kind"] for _, o in all_objects(tmp)}
    assert {"Deployment", "ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule",
            "PodMonitoring", "NetworkPolicy", "PodDisruptionBudget", "Job"} <= kinds


@pytest.mark.parametrize(("obj", "typo"), [
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
      "spec": {"replica": 2, "selector": {}, "template": {}}}, "replica"),
    ({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
      "spec": {"scaleTargetRef": {"name": "x"}, "triggers": [], "fallbak": {"replicas": 1}}}, "fallbak"),
    ({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
      "spec": {"triggers": []}}, "scaleTargetRef"),
    ({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"},
      "spec": {"selector": {}, "endpoints": [{"port": "metrics", "intervall": "30s"}]}}, "intervall"),
    ({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "x"},
      "spec": {"groups": [{"name": "g", "rules": [{"alert": "A"}]}]}}, "spec.groups"),  # a rule needs expr
], ids=["deployment", "scaledobject-unknown", "scaledobject-missing", "servicemonitor", "prometheusrule"])
def test_schema_validation_catches_mistakes(obj, typo):
    assert any(typo in p for p in schema_problems(obj)), schema_problems(obj)


# --- Base -----------------------------------------------------------------------------------------------

BASE = ROOT / "manifests/base"


def test_base_deployment_is_hardened_and_probes_the_plaintext_health_port():
    docs = build(BASE)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 6000, "grpc-health": 6001, "metrics": 8080}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc-health"], probe
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    spread = pod["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
    assert all(c["labelSelector"]["matchLabels"].items() <= pod_labels(deployment).items() for c in spread)
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert not RBAC_KINDS & {d["kind"] for d in docs}, "Helios reads no Kubernetes API: no RBAC"


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_the_config_map_is_a_valid_helios_config_mounted_where_helios_reads_it(tmp_path):
    docs = build(BASE)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config_arg = container["args"][container["args"].index("--config") + 1]
    mount = next(m for m in container["volumeMounts"] if config_arg.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = next(d for d in objects(docs, "ConfigMap") if d["metadata"]["name"] == volume["configMap"]["name"])
    key = config_arg.removeprefix(mount["mountPath"] + "/")
    path = tmp_path / key
    path.write_text(config_map["data"][key])
    settings = load_settings(path)  # raises ConfigError, listing every problem, if the file is wrong
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (settings.server.grpc_port, settings.server.metrics_port) == (ports["grpc"], ports["metrics"])
    if "security" in Settings.model_fields:
        assert settings.security.health_port == ports["grpc-health"]
    grace = one(docs, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.server.shutdown_grace < grace, "Helios must finish its graceful stop before SIGKILL"


def test_service_is_cluster_ip_on_the_grpc_and_metrics_ports():
    docs = build(BASE)
    service, deployment = one(docs, "Service"), one(docs, "Deployment")
    assert service["spec"].get("clusterIP") != "None", "not headless: see the comment in service.yaml"
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()
    container_ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {(p["name"], p["port"]) for p in service["spec"]["ports"]} == {("grpc", 6000), ("metrics", 8080)}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports


def test_network_policy_admits_keda_to_grpc_and_monitoring_to_metrics_only():
    docs = build(BASE)
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels(one(docs, "Deployment")).items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    allowed = {(frm["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], port["port"])
               for rule in policy["spec"]["ingress"] for frm in rule["from"] for port in rule["ports"]}
    assert allowed == {("keda", 6000), ("monitoring", 8080)}


def test_disruption_budget_keeps_one_replica():
    docs = build(BASE)
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(one(docs, "Deployment")).items()


# --- Overlays -------------------------------------------------------------------------------------------

def scrape_target_matches(docs, endpoint_port: str) -> None:
    service = one(docs, "Service")
    assert endpoint_port in {p["name"] for p in service["spec"]["ports"]}


def test_plain_overlay_scrapes_the_service_and_carries_the_rules():
    docs = build(ROOT / "manifests/overlays/plain")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= one(docs, "Service")["metadata"]["labels"].items()
    for endpoint in monitor["spec"]["endpoints"]:
        scrape_target_matches(docs, endpoint["port"])
    assert one(docs, "PrometheusRule")["spec"]["groups"]
    assert all(d["metadata"].get("namespace") == "helios" for d in docs if d["kind"] != "Namespace")


def test_gke_overlay_uses_workload_identity_and_managed_prometheus():
    docs = build(ROOT / "manifests/overlays/gke")
    account = one(docs, "ServiceAccount")
    assert re.fullmatch(r"[a-z][-a-z0-9]*@[A-Z_a-z0-9-]+\.iam\.gserviceaccount\.com",
                        account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"])
    # Workload Identity trades the pod's service account token for Google credentials.
    assert account["automountServiceAccountToken"] is True
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    monitoring = one(docs, "PodMonitoring")
    assert monitoring["spec"]["selector"]["matchLabels"].items() <= pod_labels(one(docs, "Deployment")).items()
    container_ports = {p["name"] for p in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitoring["spec"]["endpoints"]} <= container_ports
    sources = {frm["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for rule in one(docs, "NetworkPolicy")["spec"]["ingress"] for frm in rule["from"]}
    assert "gmp-system" in sources, "GKE's managed collectors scrape from gmp-system"
    assert one(docs, "Rules")["spec"]["groups"]


def test_tls_component_points_helios_settings_at_the_mounted_secret(tmp_path):
    docs = build_component(ROOT / "manifests/components/tls", tmp_path)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert next(v for v in pod["volumes"] if v["name"] == "tls")["secret"]["secretName"] == "helios-server-tls"
    for env in container["env"]:
        section, key = env["name"].removeprefix("HELIOS_").lower().split("__")
        assert key in Settings.model_fields[section].annotation.model_fields, f"{env['name']}: no such setting"
        assert env["value"].startswith(mount["mountPath"] + "/")


def test_no_secret_or_key_material_is_committed():
    texts = [p.read_text() for p in (ROOT / "manifests").rglob("*.yaml")]
    assert not any("-----BEGIN" in t for t in texts)
    assert not [d for _, d in example_docs() if d["kind"] == "Secret"]


# --- Examples -------------------------------------------------------------------------------------------

def external_triggers():
    return [(src, d, t) for src, d in example_docs() if d["kind"] == "ScaledObject"
            for t in d["spec"]["triggers"] if t["type"] in ("external", "external-push")]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_triggers_are_valid_helios_metadata(path):
    parse = MetadataParser({n: cls() for n, cls in SOURCES.items()}, load_settings().models, MODELS)
    triggers = [t for src, d, t in external_triggers() if src == rel(path)]
    assert triggers
    for t in triggers:
        metadata = t["metadata"]
        assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata values must be strings"
        assert "scalerAddress" in metadata and "scalerAddress" in KEDA_KEYS
        parse("ns", "so", metadata)  # raises InvalidMetadata, naming the key, if the example is wrong


def test_the_main_example_uses_every_metadata_key_helios_accepts():
    from helios.scaler.config.metadata import _COMMON_ALIASES  # the common keys, whatever the source
    (metadata,) = [t["metadata"] for src, _, t in external_triggers() if src.endswith("scaledobject-demo.yaml")]
    text = (ROOT / "manifests/examples/scaledobject-demo.yaml").read_text()
    # An alternative to a key in use (quantile instead of targetShortfall) is shown commented out.
    alternatives = set(re.findall(r"^\s+# (\w+): .*#", text, re.M))
    assert set(_COMMON_ALIASES) <= set(metadata) | alternatives
    uncommented = [k for k in metadata if not re.search(rf"^\s+{k}: .*#", text, re.M)]
    assert not uncommented, f"keys without a comment: {uncommented}"


def test_scaler_addresses_resolve_to_the_helios_service():
    service = one(build(BASE), "Service")
    namespace = service["metadata"]["namespace"]
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    addresses = {t["metadata"]["scalerAddress"] for _, _, t in external_triggers()}
    assert addresses == {f"{service['metadata']['name']}.{namespace}.svc.cluster.local:{grpc_port}"}


def test_scaled_objects_target_a_deployment_of_the_demo_app_or_say_where_it_is():
    demo = build(ROOT / "manifests/examples/demo-app")
    api = one(demo, "Deployment", "api")
    for src, d in example_docs():
        if d["kind"] == "ScaledObject" and d["metadata"]["namespace"] == "demo":
            assert d["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"], src
            assert d["metadata"]["namespace"] == api["metadata"]["namespace"]


def test_tls_example_takes_the_client_certificate_from_a_secret():
    docs = [d for src, d in example_docs() if src.endswith("scaledobject-tls.yaml")]
    auth = one(docs, "TriggerAuthentication", "helios-tls")
    params = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert set(params) == {"caCert", "tlsClientCert", "tlsClientKey"}
    assert len({r["name"] for r in params.values()}) == 1
    so = one(docs, "ScaledObject", "api-tls")
    assert so["spec"]["triggers"][0]["authenticationRef"]["name"] == "helios-tls"


def test_prometheus_example_reads_the_forecast_helios_publishes():
    docs = [d for src, d in example_docs() if src.endswith("scaledobject-prometheus.yaml")]
    triggers = {t["type"]: t["metadata"] for t in one(docs, "ScaledObject", "api-cpu")["spec"]["triggers"]}
    assert "helios_predicted_cpu" in triggers["prometheus"]["query"]
    assert triggers["external"]["signal"] == "cpu"  # what makes Helios export helios_predicted_cpu


def test_locustfile_compiles_and_has_browsing_searching_and_buying_personas():
    path = ROOT / "manifests/examples/loadtest/locustfile.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    compile(tree, str(path), "exec")
    users = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)
             and any(getattr(b, "id", None) == "HttpUser" for b in node.bases)}
    assert set(users) >= {"Browser", "Searcher", "Buyer"}
    for name, cls in users.items():
        tasks = [f for f in cls.body if isinstance(f, ast.FunctionDef) and any(
            "task" in ast.unparse(dec) for dec in f.decorator_list)]
        assert tasks, f"{name} has no @task"
    job = one(build(ROOT / "manifests/examples/loadtest"), "Job", "locust")
    assert job["metadata"]["namespace"] == "loadtest"
    assert "--locustfile=/mnt/locust/locustfile.py" in job["spec"]["template"]["spec"]["containers"][0]["args"]


# --- Image ----------------------------------------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"


def test_dockerfile_passes_hadolint():
    result = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(instruction, arguments) per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, args = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_conventions():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build tools stay out of the final image"
    for stage in stages:
        image = stage[0][1].split()[0]
        # A digest where one can be verified; else the full version (no registry to resolve it here).
        pinned = r"@sha256:[0-9a-f]{64}$|:\d+\.\d+\.\d+-[a-z]+-[a-z]+$"
        assert re.search(pinned, image), f"base image not pinned: {image}"
    final = dict(stages[-1])
    final_all = stages[-1]
    assert re.fullmatch(r"\d+(:\d+)?", final["USER"]), "a numeric non-root user, so runAsNonRoot can check it"
    assert final["USER"].split(":")[0] != "0"
    assert set(" ".join(a for i, a in final_all if i == "EXPOSE").split()) == {"6000", "6001", "8080"}
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert final["ENTRYPOINT"].startswith("["), "exec form: helios gets SIGTERM itself, not a shell"
    final_runs = " ".join(a for i, a in final_all if i == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make)\b", final_runs), "no compilers in the final stage"
    build_runs = " ".join(a for i, a in stages[0] if i == "RUN")
    assert "requirements.lock" in build_runs and "--require-hashes" in build_runs


def test_requirements_lock_pins_every_runtime_dependency_with_hashes():
    lock = (ROOT / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([a-z0-9][-a-z0-9_.\[\]]*)==(\S+)", lock, re.M))
    entries = re.split(r"\n(?=[a-z0-9])", lock.split("\n\n", 1)[-1])
    assert all("--hash=sha256:" in e for e in entries if "==" in e)
    import tomllib
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    normalised = {n.split("[")[0].replace("_", "-") for n in pinned}
    assert names <= normalised, f"not in requirements.lock: {names - normalised}; regenerate it (see its header)"


def test_replicas_component_shares_the_work_behind_a_headless_service(tmp_path):
    docs = build_component(ROOT / "manifests/components/replicas", tmp_path)
    headless = one(docs, "Service", "helios-replicas")
    assert headless["spec"]["clusterIP"] == "None" and [p["port"] for p in headless["spec"]["ports"]] == [6000]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HELIOS_STATE__REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "helios-redis", "key": "url"}
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    policy = one(docs, "NetworkPolicy", "helios-valkey")
    helios_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "helios"}}}
    assert policy["spec"]["ingress"] == [{"from": [helios_pods], "ports": [{"protocol": "TCP", "port": 6379}]}]
    assert one(docs, "Service")["spec"]["type"] == "ClusterIP"  # the single-replica Service stays
