"""Every model format the repository serves loads and predicts exactly what ``model(x)`` does
in-process (the registry, without the stack)."""
import numpy as np
import pytest

from shared.settings import Settings
from tests.fixtures.repository import build_legacy, build_pair, build_scaled, save
from workers.inference.registry import ModelRegistry, discover


def registry_for(models_dir, **overrides) -> ModelRegistry:
    registry = ModelRegistry(Settings(models_dir=str(models_dir), **overrides))
    registry.sync()
    return registry


@pytest.mark.parametrize("fmt", ["keras", "saved_model", "h5"])
def test_a_multi_input_model_predicts_like_the_keras_model_in_every_format(tmp_path, fmt):
    model = build_pair()
    save(model, tmp_path / "pair" / "1", fmt)
    compiled = registry_for(tmp_path).get("pair", 1)
    assert compiled.signature.config["format"] == fmt
    assert [(s.name, s.shape) for s in compiled.signature.inputs] == [("a", (None, 3)), ("b", (None, 2))]
    a = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(7, 2)).astype(np.float32)
    expected = [np.asarray(o) for o in model([a, b])]
    for got, want in zip(compiled.predict([a, b]), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fmt", ["keras", "saved_model", "h5"])
def test_a_single_input_model_predicts_like_the_keras_model_in_every_format(tmp_path, fmt):
    model = build_legacy()
    save(model, tmp_path / "legacy" / "1", fmt)
    compiled = registry_for(tmp_path).get("legacy", 1)
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(compiled.predict(x)[0], np.asarray(model(x)), rtol=1e-6, atol=1e-6)


def test_labels_answer_the_top_k_per_instance(tmp_path):
    save(build_legacy(), tmp_path / "legacy" / "1", "h5", config="labels: [cat, dog, bird]\ntop_k: 2\n")
    compiled = registry_for(tmp_path).get("legacy", 1)
    x = np.array([[1, 2, 3, 4], [-4, -3, -2, -1]], dtype=np.float32)
    scores = compiled.predict(x)[0]
    import orjson

    labels = orjson.loads(compiled.top_labels([scores]))
    names = ["cat", "dog", "bird"]
    for row, top in zip(scores, labels, strict=True):
        order = np.argsort(-row)[:2]
        assert [t["label"] for t in top] == [names[i] for i in order]
        np.testing.assert_allclose([t["score"] for t in top], row[order], rtol=1e-6)


def test_only_the_newest_kept_versions_load(tmp_path):
    for version in (1, 2, 3):
        save(build_scaled(version), tmp_path / "scaled" / str(version))
    assert registry_for(tmp_path, keep_versions=2).loaded() == [("scaled", 2), ("scaled", 3)]


def test_a_broken_version_is_refused_and_the_others_still_load(tmp_path):
    save(build_scaled(1), tmp_path / "scaled" / "1")
    (tmp_path / "scaled" / "2").mkdir()
    (tmp_path / "scaled" / "2" / "model.keras").write_bytes(b"not a zip archive")
    save(build_scaled(1), tmp_path / "other" / "1")
    registry = registry_for(tmp_path)
    assert registry.loaded() == [("other", 1), ("scaled", 1)]
    assert not registry.expects("scaled", 2)  # refused, not awaited


def test_a_version_with_different_inputs_is_refused_unless_allowed(tmp_path):
    save(build_scaled(1), tmp_path / "scaled" / "1")
    registry = registry_for(tmp_path, reload_settle_s=0)
    save(build_scaled(2, features=3), tmp_path / "scaled" / "2")
    registry.sync()
    assert registry.loaded() == [("scaled", 1)]
    save(build_scaled(3, features=3), tmp_path / "scaled" / "3", config="allow_signature_change: true\n")
    registry.sync()
    assert ("scaled", 3) in registry.loaded()


def test_discovery_ignores_directories_that_are_not_versions(tmp_path):
    save(build_scaled(1), tmp_path / "scaled" / "1")
    (tmp_path / "scaled" / "latest").mkdir()
    (tmp_path / "scaled" / "0").mkdir()
    (tmp_path / "scaled" / "7").mkdir()  # no model file yet
    assert [v for v, _ in discover(tmp_path)["scaled"]] == [1]


def test_a_job_for_a_version_this_worker_is_about_to_load_waits_instead_of_failing(tmp_path):
    """With several workers per model, web may route to a version another worker published first."""
    import threading
    import time
    from dataclasses import replace

    from workers.inference.registry import ModelNotLoaded

    save(build_scaled(1), tmp_path / "scaled" / "1")
    registry = registry_for(tmp_path, reload_settle_s=3600)
    save(build_scaled(2), tmp_path / "scaled" / "2")
    registry.sync()  # still "settling": seen on disk, not loaded
    assert registry.loaded() == [("scaled", 1)] and registry.expects("scaled", 2)

    def load_later():
        time.sleep(0.5)
        registry.settings = replace(registry.settings, reload_settle_s=0)
        registry.sync()

    threading.Thread(target=load_later).start()
    assert registry.get_or_wait("scaled", 2).signature.version == 2
    began = time.monotonic()
    with pytest.raises(ModelNotLoaded):
        registry.get_or_wait("scaled", 9)  # not on disk: no wait
    assert time.monotonic() - began < 0.5
