"""The recipes of the shipped models (`convdet train --arch A --recipe`): the table agrees with
the shipped files, its legs chain through --init, and a killed recipe goes on where it stopped."""

from __future__ import annotations

import json

import pytest
from convdet.export.recipes import RECIPES, Leg, Recipe
from convdet.export.specs import ARCHS
from convdet.runtime.modelinfo import ModelInfo

from convdet.cli import main


@pytest.mark.parametrize("arch", sorted(RECIPES))
def test_each_recipe_is_of_a_shipped_architecture_and_its_data(arch, models_dir):
    recipe = RECIPES[arch]
    assert arch in ARCHS
    sidecar = models_dir / f"{arch}_fp32.json"  # the metadata every shipped file of arch carries
    info = ModelInfo.from_metadata(json.loads(sidecar.read_text(encoding="utf-8")))
    assert info.arch == arch
    assert ("real images" in info.trained_on) == recipe.real, info.trained_on
    assert (recipe.legs[0].epochs is None) == (recipe.grows is not None)
    assert recipe.grows == ARCHS[arch].grows_from
    assert recipe.grows is None or recipe.grows in RECIPES


def test_a_recipe_has_one_stage_1_at_its_start():
    with pytest.raises(ValueError, match="starts with"):
        Recipe(legs=(Leg(2),))
    with pytest.raises(ValueError, match="only the first leg"):
        Recipe(legs=(Leg(2, epochs=1), Leg(2, epochs=1)))
    with pytest.raises(ValueError, match="only the first leg"):
        Recipe(legs=(Leg(2, epochs=1),), grows="wide")
    with pytest.raises(ValueError, match="no leg before it"):
        Recipe(legs=(Leg(2, epochs=1, from_export=True),))
    with pytest.raises(ValueError, match="has legs"):
        Recipe(legs=())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "wide", "--epochs", "3"], "--recipe sets --epochs itself"),
        (["--arch", "wide", "--seed", "1", "--init", "runs/x"], "sets --seed, --init itself"),
        (["--arch", "wide", "--real-share", "0.3"], "--recipe sets --real-share itself"),
        (["--arch", "wide", "--padded-windows"], "--recipe sets --padded-windows itself"),
        (["--arch", "wide"], "give --real COCO"),
        (["--arch", "basic"], "no recipe for --arch basic"),
    ],
)
def test_recipe_refuses_options_it_sets_and_missing_data(tmp_path, capsys, extra, message):
    assert main(["train", "--recipe", "--out", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1, err


class Killed(Exception):
    """Stands for the process dying right after an epoch of the second leg was saved."""


@pytest.mark.tensorflow
def test_a_recipe_chains_its_legs_and_resumes_after_a_kill(
    mnist_npz, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("tensorflow")
    from convdet.export import recipes
    from convdet.export.checkpoint import EpochCheckpoint

    tiny = Recipe(
        legs=(
            Leg(1, epochs=1),
            Leg(2, seed=1, mark_weight=2.0, padded_windows=True),
            Leg(1, seed=2, padded_windows=True, from_export=True),
        ),
        real=False,
    )
    monkeypatch.setitem(recipes.RECIPES, "basic", tiny)
    out = tmp_path / "recipe"
    args = ["train", "--arch", "basic", "--recipe", "--data", str(mnist_npz), "--out", str(out)]
    args += ["--limit", "300", "--batch-size", "64", "--scenes-per-epoch", "16"]
    save = EpochCheckpoint.on_epoch_end

    def dies_in_leg_2(self: EpochCheckpoint, epoch: int, logs=None) -> None:
        save(self, epoch, logs)
        if self.folder.parent.parent == out / "legs" / "2" and self.folder.name == "stage2":
            raise Killed

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", dies_in_leg_2)
    with pytest.raises(Killed):
        main(args)
    assert (out / "legs" / "1" / "run.json").is_file() and not (out / "run.json").exists()
    assert main(args) == 2  # an unfinished recipe is not started over without --resume
    assert "holds an unfinished recipe" in capsys.readouterr().err

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", save)
    assert main([*args, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "leg 1 of 3 done" in printed and "leg 2 of 3 ->" in printed
    first = json.loads((out / "legs" / "1" / "run.json").read_text())["config"]
    second = json.loads((out / "legs" / "2" / "run.json").read_text())
    last = json.loads((out / "run.json").read_text())["config"]
    assert (first["epochs"], first["scenes"]["epochs"], first["init"]) == (1, 1, None)
    assert second["config"]["init"] == str(out / "legs" / "1")
    assert (second["config"]["seed"], second["config"]["scenes"]["mark_weight"]) == (1, 2.0)
    assert second["config"]["scenes"]["padded_windows"] and not first["scenes"]["padded_windows"]
    assert len(second["history"]["scenes_loss"]) == 2  # the killed leg went on, not over
    exported = out / "legs" / "2" / "detector.onnx"  # the third leg went on from the file
    assert last["init"] == str(exported) and last["seed"] == 2
    assert ModelInfo.from_metadata(onnx_metadata(exported)).classifier_padded
    assert not (out / "checkpoint").exists()


def onnx_metadata(path) -> dict[str, str]:
    import onnx

    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
