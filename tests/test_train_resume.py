"""A training run killed between epochs goes on where it stopped (`convdet train --resume`),
and the command refuses to mix an unfinished run with a new one or with other options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from convdet.export.checkpoint import EpochCheckpoint
from convdet.export.data import load_mnist
from convdet.export.finetune import FinetuneConfig, SceneSet
from convdet.export.train import TrainConfig, train

from convdet.cli import main


class Killed(Exception):
    """Stands for the process dying right after an epoch was saved."""


def test_a_run_killed_in_stage_2_resumes_after_its_last_epoch(mnist_npz, tmp_path, monkeypatch):
    data = load_mnist(mnist_npz)
    scenes = FinetuneConfig(epochs=2, scenes_per_epoch=16)
    config = TrainConfig(arch="basic", epochs=2, limit=300, batch_size=64, scenes=scenes)
    checkpoint = tmp_path / "checkpoint"
    save = EpochCheckpoint.on_epoch_end

    def dies_after_saving_stage_2_epoch_1(self: EpochCheckpoint, epoch: int, logs=None) -> None:
        save(self, epoch, logs)
        if self.folder.name == "stage2":
            raise Killed

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", dies_after_saving_stage_2_epoch_1)
    with pytest.raises(Killed):
        train(data, config, checkpoint)
    stage1 = json.loads((checkpoint / "stage1" / "state.json").read_text())
    stage2 = json.loads((checkpoint / "stage2" / "state.json").read_text())
    assert (stage1["epochs"], stage2["epochs"]) == (2, 1)
    assert [p.name for p in (checkpoint / "stage2").glob("*.h5")] == ["epoch-1.weights.h5"]

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", save)
    drawn: list[int] = []
    draw = SceneSet.on_epoch_end

    def counted(self: SceneSet) -> None:
        drawn.append(self.epoch)
        draw(self)

    monkeypatch.setattr(SceneSet, "on_epoch_end", counted)
    result = train(data, config, checkpoint)
    assert drawn[0] == 1  # the resumed stage 2 draws epoch 2's scenes first, as unbroken
    assert result.history["loss"] == [logs["loss"] for logs in stage1["logs"]]  # not retrained
    assert len(result.history["scenes_loss"]) == 2
    assert result.history["scenes_loss"][0] == stage2["logs"][0]["loss"]


def test_resume_refuses_what_it_cannot_go_on_with(mnist_npz, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--data", str(mnist_npz), "--out", str(out), "--limit", "300"]
    assert main([*base, "--resume"]) == 2
    assert "holds no unfinished run" in capsys.readouterr().err
    checkpoint = out / "checkpoint"
    checkpoint.mkdir(parents=True)
    assert main(base) == 2  # a new run over an unfinished one
    err = capsys.readouterr().err
    assert "holds an unfinished run" in err and "--resume" in err and len(err.splitlines()) == 1
    (checkpoint / "config.json").write_text(json.dumps({"epochs": 30, "limit": 100}))
    assert main([*base, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "options differ from the unfinished run's (" in err
    listed = err[err.rindex("(") + 1 : -1].split(", ")
    assert "limit" in listed and "data" in listed and "epochs" not in listed  # 30 both times
    assert Path(checkpoint / "config.json").is_file()  # refused runs leave the state alone
