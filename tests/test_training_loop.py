"""The training loop's guards: non-finite losses, early stopping, schedules, averaging."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_recipe
from seqattn import hookimpl
from seqattn import checkpoint as ckpt
from seqattn.errors import TrainingStopped
from seqattn.plugins import PluginManager
from seqattn.recipe import validate
from seqattn.schedule import lr_at
from seqattn.train import Trainer
from seqattn_text.translation import TranslationTask


class NanAfterSix(TranslationTask):
    """Translation whose loss turns NaN from the 7th update on."""

    updates = 0

    def loss(self, model, batch, label_smoothing=None):
        loss = super().loss(model, batch, label_smoothing)
        if model.training:
            NanAfterSix.updates += 1
        return loss * float("nan") if NanAfterSix.updates > 6 else loss


class Plugin:
    @hookimpl
    def seqattn_register(self, registry):
        registry.add("task", "nan_translation", NanAfterSix)


def test_non_finite_updates_are_skipped_then_the_run_stops(tmp_path, capsys):
    registry = PluginManager(extra_plugins=(("nan", Plugin()),)).registry
    data = tiny_recipe({"max_steps": 20, "save_every": 3, "eval_every": 100, "max_bad_steps": 3})
    data["task"]["name"] = "nan_translation"
    recipe = validate(data, registry)
    trainer = Trainer(recipe, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    with pytest.raises(TrainingStopped, match=r"3 non-finite updates in a row at step 9; last good checkpoint: .*step_00000006"):
        trainer.fit()
    assert "step 7: non-finite loss or gradient, update skipped" in capsys.readouterr().out
    names = [p.name for p in ckpt.complete_checkpoints(tmp_path / "run")]
    assert names[-1] == "step_00000006"
    saved = load_file(str(tmp_path / "run/checkpoints/step_00000006/model.safetensors"))
    assert all(torch.isfinite(v).all() for v in saved.values())
    # the skipped updates left the weights as they were after update 6
    now = trainer.net.state_dict()
    assert any(not torch.equal(before[k], now[k]) for k in now)  # it did train before the NaNs
    for k, v in saved.items():
        assert torch.equal(now[k], v), k


def test_early_stopping_on_patience(tmp_path):
    registry = PluginManager().registry
    data = tiny_recipe({"max_steps": 200, "eval_every": 2, "save_every": 100, "patience": 2, "lr": 0.0,
                        "warmup_steps": 0, "schedule": "constant"})
    trainer = Trainer(validate(data, registry), tmp_path / "run")
    trainer.fit()  # with a zero learning rate the validation loss never improves after the first evaluation
    assert trainer.state.step == 6 and trainer.state.stale == 2
    assert (tmp_path / "run/checkpoints/step_00000006").is_dir()  # the stopping point is saved


def test_schedules():
    kw = {"lr": 1.0, "warmup_steps": 4, "max_steps": 14}
    assert [lr_at(s, schedule="inverse_sqrt", **kw) for s in (1, 4, 16)] == [0.25, 1.0, 0.5]
    assert lr_at(9, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_at(14, schedule="linear", **kw) == 0.0
    assert lr_at(100, schedule="constant", **kw) == 1.0
    vaswani = lr_at(4000, lr=512**-0.5 * 4000**-0.5, schedule="inverse_sqrt", warmup_steps=4000, max_steps=1)
    assert vaswani == pytest.approx(512**-0.5 * min(4000**-0.5, 4000 * 4000**-1.5))


def test_checkpoint_average(tmp_path):
    for i, value in enumerate((1.0, 2.0, 6.0)):
        (tmp_path / f"c{i}").mkdir()
        ckpt.save_tensors({"w": torch.full((2,), value)}, tmp_path / f"c{i}" / "model.safetensors")
    avg = ckpt.average([tmp_path / f"c{i}" for i in range(3)])
    assert torch.equal(avg["w"], torch.full((2,), 3.0))
    assert not math.isnan(float(avg["w"][0]))


def test_compiled_training_matches_eager_and_saves_plain_weights(tmp_path):
    """train.compile wraps the training forward/backward in torch.compile (the "eager" backend here,
    which runs the captured graph without generating code); with dropout off it computes what eager
    training computes, and checkpoints hold the plain module's parameter names."""
    registry = PluginManager().registry
    runs = {}
    for backend in (None, "eager"):
        data = tiny_recipe({"max_steps": 6, "eval_every": 100, "save_every": 6, "compile": backend})
        for side in ("encoder", "decoder"):
            data["model"][side] |= {"dropout": 0.0, "activation_dropout": 0.0}
        trainer = Trainer(validate(data, registry), tmp_path / str(backend))
        assert isinstance(trainer.model, torch._dynamo.eval_frame.OptimizedModule) == (backend is not None)
        trainer.fit()
        runs[backend] = load_file(str(tmp_path / str(backend) / "checkpoints/step_00000006/model.safetensors"))
    assert runs["eager"].keys() == runs[None].keys()
    for name, value in runs[None].items():
        torch.testing.assert_close(runs["eager"][name], value, rtol=1e-4, atol=1e-5, msg=name)
