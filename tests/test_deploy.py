"""The Dockerfile and manifests, checked with the real tools (no cluster or Docker engine here)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helios.adapters import SOURCES
from helios.engine.models import MODELS
from helios.scaler.metadata import KEDA_KEYS, MetadataParser
from helios.scaler.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "manifests/examples").glob("*.yaml"))


def tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert path, f"{name} is not installed; .ci/run installs it"
    return path


def test_dockerfile_passes_hadolint():
    result = subprocess.run([tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_builds_with_kustomize_and_probes_the_grpc_health_service():
    out = subprocess.run([tool("kubectl"), "kustomize", str(ROOT / "manifests/base")],
                         capture_output=True, text=True, check=True).stdout
    objects = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out)}
    assert {("Namespace", "helios"), ("Deployment", "helios"), ("Service", "helios")} <= set(objects)
    pod = objects["Deployment", "helios"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["grpc"]["port"] == 6001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"]
    assert {p["port"] for p in objects["Service", "helios"]["spec"]["ports"]} == {6000, 8080}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_triggers_are_valid_helios_metadata(path):
    parse = MetadataParser({n: cls() for n, cls in SOURCES.items()}, load_settings().models, MODELS)
    triggers = [t for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] == "ScaledObject"
                for t in doc["spec"]["triggers"] if t["type"] == "external"]
    assert triggers
    for t in triggers:
        metadata = t["metadata"]
        assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata values must be strings"
        assert "scalerAddress" in metadata and "scalerAddress" in KEDA_KEYS
        parse("ns", "so", metadata)  # raises InvalidMetadata, naming the key, if the example is wrong
