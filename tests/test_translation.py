"""Translation end to end through the CLI, data formats, tokenizers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from helpers import ROOT, seqattn, tiny_recipe, write_recipe
from seqattn.config import DataSource
from seqattn_text.data import read_pairs
from seqattn_text.numbers import numbers_en_de


def test_run_writes_results_metrics_recipe_and_translates(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe({"average_last": 2, "keep_last": 2, "final_model": "average"}))
    run = tmp_path / "run"
    out = seqattn("run", path, "--output", run, "--set", "search.beam=3")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "test: bleu" in out.stdout and "sacreBLEU signature" in out.stdout
    results = json.loads((run / "results.json").read_text())
    assert set(results["test"]) >= {"bleu", "chrf", "signature"}
    assert results["test"]["signature"].startswith("nrefs:1|case:mixed")
    assert results["model"] == "average/model.safetensors"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in steps] == list(range(2, 13, 2))
    assert all({"step", "loss", "lr", "tokens_per_s"} <= set(m) for m in steps)
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved["search"]["beam"] == 3  # the override is recorded
    assert resolved["model"]["encoder"]["norm"] == "post"  # and defaults are filled in
    assert (run / "tokenizer" / "spm.model").is_file()
    assert len(list((run / "checkpoints").iterdir())) == 2  # keep_last
    tr = seqattn("translate", run, "--beam", "2", stdin="We buy ten apples today.\nYesterday I saw three dogs.\n")
    assert tr.returncode == 0, tr.stderr
    assert len(tr.stdout.splitlines()) == 2
    nb = seqattn("translate", run, "--beam", "3", "--n-best", "2", stdin="We buy ten apples today.\n")
    assert nb.returncode == 0 and len(nb.stdout.splitlines()[0].split("\t")) == 2


def test_wmt14_recipe_runs_on_local_files_in_the_hub_schema(tmp_path):
    for split, seed, n in (("train", 1, 300), ("valid", 2, 10), ("test", 3, 10)):
        rows = numbers_en_de(size=n, seed=seed)
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tiny = {"d_model": 32, "layers": 1, "heads": 2, "ffn": 64}
    sets = [f"task.{s}={{files: {tmp_path / s}.jsonl}}" for s in ("train", "valid", "test")]
    sets += [f"model.{side}.{k}={v}" for side in ("encoder", "decoder") for k, v in tiny.items()]
    sets += ["task.tokenizer.vocab_size=150", "train.max_steps=4", "train.max_tokens=500", "train.accumulate=2",
             "train.save_every=2", "train.eval_every=2", "train.warmup_steps=2", "train.average_last=2",
             "train.keep_last=2", "search.max_len_b=5", "train.threads=1"]
    check = seqattn("check", ROOT / "recipes/wmt14_transformer.yaml", *[a for s in sets for a in ("--set", s)])
    assert check.returncode == 0, check.stderr
    out = seqattn("run", ROOT / "recipes/wmt14_transformer.yaml", "--output", tmp_path / "run",
                  *[a for s in sets for a in ("--set", s)])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bleu" in json.loads((tmp_path / "run/results.json").read_text())["test"]


def test_check_counts_transformer_base():
    out = seqattn("check", ROOT / "recipes/wmt14_transformer.yaml")
    assert out.returncode == 0, out.stderr
    n = int(next(line for line in out.stdout.splitlines() if line.startswith("parameters:")).split()[1])
    # 37k shared embedding (18.9M) + 6 encoder layers (3.15M each) + 6 decoder layers (4.2M each)
    d, f, v = 512, 2048, 37000
    enc = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d
    dec = enc + 4 * d * d + 4 * d + 2 * d
    assert n == v * d + 6 * enc + 6 * dec


ROWS = [("Two cats sit.", "Zwei Katzen sitzen."), ("A dog runs.", "Ein Hund läuft."), ("Hello!", "Hallo!")]


@pytest.mark.parametrize("fmt", ["text", "jsonl", "jsonl_flat", "tsv", "parquet"])
def test_local_formats(tmp_path, fmt):
    if fmt == "text":
        for i, lang in enumerate(("en", "de")):
            (tmp_path / f"d.{lang}").write_text("".join(r[i] + "\n" for r in ROWS))
        source = DataSource(files=str(tmp_path / "d.{lang}"))
    elif fmt.startswith("jsonl"):
        rows = [{"translation": {"en": e, "de": d}} if fmt == "jsonl" else {"en": e, "de": d} for e, d in ROWS]
        (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        source = DataSource(files=str(tmp_path / "d.jsonl"))
    elif fmt == "tsv":
        (tmp_path / "d.tsv").write_text("en\tde\n" + "".join(f"{e}\t{d}\n" for e, d in ROWS))
        source = DataSource(files=str(tmp_path / "d.tsv"))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"translation": [{"de": d, "en": e} for e, d in ROWS]}), tmp_path / "d.parquet")
        source = DataSource(files=str(tmp_path / "d.parquet"))
    src, tgt = read_pairs(source, "en", "de", "task.train")
    assert list(zip(src, tgt)) == ROWS


@pytest.mark.parametrize("tok", [{"name": "sentencepiece", "model_type": "unigram"},
                                 {"name": "sentencepiece", "model_type": "bpe"},
                                 {"name": "hf_bpe"}])
def test_tokenizers_train_save_reload(tmp_path, tok):
    from seqattn.plugins import get_registry
    from seqattn.recipe import Validator

    spec = Validator(get_registry()).component({**tok, "vocab_size": 200}, "tokenizer", "t")
    texts = [r["translation"][k] for r in numbers_en_de(size=300, seed=0) for k in ("en", "de")]
    a = spec.build()
    a.train(texts, tmp_path / "tok")
    b = spec.build()
    b.load(tmp_path / "tok")
    sample = ["Gestern haben wir dreiundachtzig Vögel gezählt.", "They paint fifty-eight flowers today."]
    assert a.encode(sample) == b.encode(sample)
    assert b.decode(b.encode(sample)) == sample
    assert (a.pad_id, a.unk_id, a.bos_id, a.eos_id) == (0, 1, 2, 3)
    assert b.vocab_size <= 200


def test_separate_vocabularies_and_hf_bpe(tmp_path):
    data = tiny_recipe({"max_steps": 4, "eval_every": 100}, joint_vocab=False,
                       tokenizer={"name": "hf_bpe", "vocab_size": 150, "min_frequency": 1})
    data["model"]["share_embeddings"] = False
    out = seqattn("run", write_recipe(tmp_path / "r.yaml", data), "--output", tmp_path / "run")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "run/tokenizer_src/tokenizer.json").is_file()
    assert (tmp_path / "run/tokenizer_tgt/tokenizer.json").is_file()
    data["model"]["share_embeddings"] = True  # sharing needs one vocabulary: a clear error, not a crash
    bad = seqattn("run", write_recipe(tmp_path / "r2.yaml", data), "--output", tmp_path / "run2")
    assert bad.returncode == 2 and "model.share_embeddings" in bad.stderr and "Traceback" not in bad.stderr


def test_translate_plots_attention_and_the_api_returns_matrices(tmp_path):
    from seqattn.translate import load_run

    data = tiny_recipe({"max_steps": 4, "eval_every": 100})
    data["model"]["decoder"]["cross_attention"] = "additive"
    run = tmp_path / "run"
    assert seqattn("run", write_recipe(tmp_path / "r.yaml", data), "--output", run).returncode == 0
    out = seqattn("translate", run, "--plot-attention", tmp_path / "plots", stdin="We buy ten apples today.\nHello.\n")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["0001.png", "0002.png"]
    (alignment,) = load_run(run).align(["We buy ten apples today."])
    assert alignment.weights.shape == (len(alignment.target), len(alignment.source))
    assert alignment.source[-1] == "</s>" and alignment.target[-1] == "</s>"
    assert np.allclose(alignment.weights.sum(1), 1.0, atol=1e-4)
