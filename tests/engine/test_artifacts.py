import json

import numpy as np
import pytest

from helios.engine.artifacts import FORMAT, bundle, open_bundle
from helios.engine.errors import ArtifactError
from helios.engine.models import create
from helios.engine.types import Series


@pytest.fixture
def files():
    s = Series(1_700_000_100 + 300 * np.arange(500), 10 + np.sin(np.arange(500) / 20))
    model = create("baseline").fit(s)
    return bundle(model, workload="shop/web/m", trained_at=123.0, data=s, scores={"mase": 0.5},
                  versions={"numpy": "2"})


def test_a_bundle_opens_to_the_same_model_and_describes_its_data(files):
    model, manifest = open_bundle(files)
    assert manifest["format"] == FORMAT and manifest["model"] == "baseline" and manifest["trained_at"] == 123.0
    assert set(manifest["files"]) == {"model.json", "metrics.json", "data.json"}
    assert json.loads(files["data.json"])["samples"] == 500
    assert json.loads(files["metrics.json"]) == {"mase": 0.5}
    assert model.predict(3).point.shape == (3,)


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.pop("manifest.json"), "no manifest.json"),
    (lambda f: f.pop("model.json"), "model.json is missing"),
    (lambda f: f.__setitem__("model.json", f["model.json"][:-10]), "model.json does not match its SHA-256"),
    (lambda f: f.__setitem__("manifest.json", b"{not json"), "manifest.json is not JSON"),
    (lambda f: f.__setitem__("manifest.json", json.dumps({**json.loads(f["manifest.json"]), "format": 99}).encode()),
     "format 99, this Helios reads format 1"),
])
def test_damaged_bundles_are_refused_with_the_reason(files, damage, message):
    damage(files)
    with pytest.raises(ArtifactError, match=message):
        open_bundle(files)
