"""Bad input ends with exit status 2 and one line on stderr, never a traceback."""

from __future__ import annotations

import pytest

from helpers import seqattn, tiny_recipe, write_recipe


def assert_one_line_error(out, *needles):
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "override, needles",
    [
        ("model.encoder.layers=six", ["model.encoder.layers: expected an integer, got 'six'"]),
        ("model.encoder.heads=2.5", ["model.encoder.heads: expected an integer, got 2.5"]),
        ("model.encoder.layer=2", ["model.encoder.layer: unknown key", "layers"]),
        ("train.learning_rate=0.1", ["train.learning_rate: unknown key"]),
        ("model.decoder.cross_attention=scaled_dott", ["model.decoder.cross_attention.name", "did you mean 'scaled_dot'"]),
        ("model.encoder.name=lstmm", ["model.encoder.name: unknown encoder 'lstmm'", "transformer"]),
        ("model.encoder.norm=middle", ["model.encoder.norm: expected one of 'pre', 'post'"]),
        ("task.train={files: /nonexistent/train.jsonl}", ["task.train.files: file not found: /nonexistent/train.jsonl"]),
        ("task.valid={files: '/nonexistent/val.{lang}'}", ["task.valid.files: no file matches"]),
        ("train.betas=[0.9]", ["train.betas: expected a list of two numbers"]),
        ("train.compile=inductorr", ["train.compile: unknown torch.compile backend 'inductorr'", "inductor"]),
        ("task.source_lang=null", ["task.source_lang: expected a string, got None"]),
        ("model.encoder.heads=3", ["model: d_model 32 is not divisible by heads 3"]),
    ],
)
def test_bad_recipe_values(tmp_path, override, needles):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe())
    for command in ("check", "run"):
        assert_one_line_error(seqattn(command, path, "--set", override, "--output", tmp_path / "run")
                              if command == "run" else seqattn(command, path, "--set", override), *needles)


def test_missing_required_value(tmp_path):
    data = tiny_recipe()
    del data["task"]["source_lang"]
    assert_one_line_error(seqattn("check", write_recipe(tmp_path / "r.yaml", data)),
                          "task.source_lang: missing required value")


def test_missing_recipe_file(tmp_path):
    assert_one_line_error(seqattn("run", tmp_path / "nope.yaml"), "nope.yaml: recipe file not found")


def test_python_tags_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("task: !!python/object/apply:os.system ['echo hi']\n")
    assert_one_line_error(seqattn("check", path), "not valid YAML")


def test_unknown_top_level_key(tmp_path):
    data = tiny_recipe()
    data["trainer"] = {}
    assert_one_line_error(seqattn("check", write_recipe(tmp_path / "r.yaml", data)), "trainer: unknown key")


def test_corrupt_checkpoint_on_resume_and_translate(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe({"max_steps": 6, "eval_every": 100}))
    run = tmp_path / "run"
    assert seqattn("run", path, "--output", run).returncode == 0
    weights = run / "checkpoints" / "step_00000006" / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"\x00garbage" * 10)
    assert_one_line_error(seqattn("run", path, "--output", run, "--resume", "--set", "train.max_steps=8"),
                          "corrupt or incompatible checkpoint")
    assert weights.read_bytes() == b"\x00garbage" * 10  # nothing was overwritten
    assert_one_line_error(seqattn("translate", run, stdin="hello\n"), "corrupt or incompatible checkpoint")
    weights.write_bytes(good)
    (run / "checkpoints" / "step_00000006" / "optimizer.pt").write_bytes(b"not a torch file")
    assert_one_line_error(seqattn("run", path, "--output", run, "--resume", "--set", "train.max_steps=8"),
                          "optimizer.pt: corrupt checkpoint file")


def test_existing_run_needs_resume(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe({"max_steps": 2, "eval_every": 100}))
    assert seqattn("run", path, "--output", tmp_path / "run").returncode == 0
    assert_one_line_error(seqattn("run", path, "--output", tmp_path / "run"), "pass --resume")
