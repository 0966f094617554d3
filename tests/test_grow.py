"""Growing a trained detector into a spec with residual blocks: the grown network starts out
computing exactly what it grew from (from a Keras run or an exported file), a spec it does not
grow from is refused, and a recipe that grows another runs that one first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from convdet.export.recipes import Leg, Recipe
from convdet.runtime.backends import open_backend

from convdet.cli import main

pytest.importorskip("tensorflow")

from convdet.export.networks import build_classifier, convolutionalize, grown_classifier
from convdet.export.specs import ARCHS
from convdet.export.train import initial_classifier


def test_a_grown_classifier_and_its_detector_compute_what_they_grew_from() -> None:
    wide, grown_spec = ARCHS["wide"], ARCHS["wide_res"]
    source = build_classifier(wide)
    rng = np.random.default_rng(0)
    for layer in source.layers:  # batch norms away from the identity, so a mix-up would show
        if layer.name.startswith("bn"):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma * 1.5, beta + 0.1, mean + 0.2, variance * 0.5])
    grown = grown_classifier(source, grown_spec)
    windows = rng.random((6, 28, 28, 1)).astype(np.float32)
    scores = grown.predict(windows, verbose=0)
    assert np.abs(scores - source.predict(windows, verbose=0)).max() < 1e-6
    frame = rng.random((1, 72, 104, 1)).astype(np.float32)
    before = convolutionalize(source, wide, "max3").predict(frame, verbose=0)
    after = convolutionalize(grown, grown_spec, "max3").predict(frame, verbose=0)
    assert np.abs(after - before).max() < 1e-6
    residual = [grown.get_layer(f"conv{index}").get_weights()[0] for index in (8, 9)]
    assert all(not kernel.any() for kernel in residual)


def test_a_spec_grows_only_from_the_one_it_names() -> None:
    with pytest.raises(ValueError, match="does not grow from"):
        grown_classifier(build_classifier(ARCHS["deep"]), ARCHS["wide_res"])


def test_the_shipped_wide_file_starts_wide_res_where_wide_is(models_dir: Path) -> None:
    shipped = models_dir / "wide.onnx"
    grown = initial_classifier(shipped, ARCHS["wide_res"])
    detector = convolutionalize(grown, ARCHS["wide_res"], "max3")
    frame = np.random.default_rng(1).random((1, 96, 128, 1)).astype(np.float32)
    expected = open_backend(shipped).run(frame)
    assert np.abs(detector.predict(frame, verbose=0) - expected).max() < 1e-5


def test_init_of_the_spec_grown_from_is_taken_and_others_refused(tmp_path, capsys) -> None:
    (tmp_path / "run.json").write_text('{"arch": "deep"}')
    (tmp_path / "classifier.keras").touch()
    assert main(["train", "--arch", "wide_res", "--init", str(tmp_path), "--out", "x"]) == 2
    assert "a run of --arch 'deep' (need 'wide' or 'wide_res'" in capsys.readouterr().err


def test_a_recipe_that_grows_runs_the_grown_recipe_first(monkeypatch, tmp_path, mnist_npz):
    from convdet.export import recipes

    monkeypatch.setitem(recipes.RECIPES, "wide", Recipe(legs=(Leg(1, epochs=1),), real=False))
    grows = Recipe(legs=(Leg(1, seed=1),), real=False, grows="wide")
    monkeypatch.setitem(recipes.RECIPES, "wide_res", grows)
    out = tmp_path / "recipe"
    args = ["train", "--arch", "wide_res", "--recipe", "--data", str(mnist_npz), "--out", str(out)]
    args += ["--limit", "300", "--batch-size", "64", "--scenes-per-epoch", "8"]
    assert main(args) == 0
    first = json.loads((out / "legs" / "wide" / "run.json").read_text())
    last = json.loads((out / "run.json").read_text())
    assert (first["arch"], first["config"]["init"]) == ("wide", None)
    assert (last["arch"], last["config"]["init"]) == ("wide_res", str(out / "legs" / "wide"))
