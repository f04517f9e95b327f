"""Quality for equal compute: seqattn's Multi30k recipe against Hugging Face Seq2SeqTrainer
with a MarianConfig of the same dimensions, one sentencepiece model shared by both, the same
wall-clock training budget each.

    python benchmarks/multi30k_vs_hf.py [--budget-minutes 30] [--data ../shared/data/multi30k]
                                        [--seqattn-set train.max_tokens=2048 ...] [--work DIR [--resume]]

``--seqattn-set`` overrides keys of seqattn's recipe for this run (recorded in the result).
Each run trains from scratch in a new directory under runs/multi30k_vs_hf/ unless ``--work``
names one; ``--resume`` continues an interrupted seqattn run there (HF always starts afresh),
and the result records that it did.

Reports end-to-end real (non-padding) target tokens per second of training, the padding
fraction of the target batches, and test_2016_flickr sacreBLEU with its signature, in
benchmarks/results/multi30k_vs_hf-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_recipe import commit, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "multi30k_transformer.yaml"


def read(data: Path, split: str) -> tuple[list[str], list[str]]:
    return tuple((data / f"{split}.{lang}").read_text(encoding="utf-8").rstrip("\n").split("\n") for lang in ("en", "de"))


def train_tokenizer(data: Path, run_dir: Path) -> None:
    """One sentencepiece model, placed where the seqattn run will load it (and HF reads it)."""
    from seqattn import recipe as recipes

    r = recipes.load(RECIPE, [f"task.train.files={data}/train.{{lang}}"])
    tok = r.task.kwargs["tokenizer"].build()
    src, tgt = read(data, "train")
    (run_dir / "tokenizer").parent.mkdir(parents=True, exist_ok=True)
    tok.train(src + tgt, run_dir / "tokenizer")


def run_seqattn(data: Path, run_dir: Path, budget: float, overrides: list[str], resume: bool) -> dict:
    sets = [f"task.{s}.files={data}/{f}.{{lang}}" for s, f in (("train", "train"), ("valid", "val"),
                                                              ("test", "test_2016_flickr"))]
    sets += [f"train.max_minutes={budget}"] + overrides
    start = time.time()
    cmd = [sys.executable, "-m", "seqattn.cli", "run", str(RECIPE), "--output", str(run_dir)] + ["--resume"] * resume
    rc = subprocess.run(cmd + [a for s in sets for a in ("--set", s)], cwd=ROOT).returncode
    if rc:  # seqattn printed why (e.g. the directory holds a run and --resume was not given)
        raise SystemExit(rc)
    from seqattn import checkpoint as ckpt
    from seqattn import recipe as recipes

    state = ckpt.read_json(ckpt.complete_checkpoints(run_dir)[-1] / "state.json")  # the final step's state
    results = json.loads((run_dir / "results.json").read_text())["test"]

    r = recipes.load(run_dir / "recipe.yaml", check_files=False)
    task = r.task.build()
    task.setup(run_dir, fit=True)
    real, padded = 0, 0
    for epoch in range(state["epoch"] + 1):  # the padding of the batches it trained on
        for index in task.batches("train", epoch, r.train.seed, r.train.max_tokens):
            b = task.collate("train", index)
            real, padded = real + b.ntokens, padded + b.tgt_out.numel()
    return {"test_bleu": results["bleu"], "signature": results["signature"], "chrf": results["chrf"],
            "recipe": str(RECIPE.relative_to(ROOT)), "overrides": overrides,
            "real_tokens_per_s": state["tokens"] / state["elapsed"], "train_seconds": state["elapsed"],
            "padding_fraction": 1 - real / padded, "updates": state["step"], "wall_seconds": time.time() - start,
            "resumed": resume}


def run_hf(data: Path, spm_dir: Path, out_dir: Path, budget: float) -> dict:
    import sacrebleu
    import sentencepiece as spm
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import (DataCollatorForSeq2Seq, MarianConfig, MarianMTModel, PreTrainedTokenizerFast,
                              Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback)

    sp = spm.SentencePieceProcessor(model_file=str(spm_dir / "spm.model"))
    vocab = {sp.IdToPiece(i): i for i in range(sp.GetPieceSize())}
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                                     pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    eos = sp.eos_id()

    def encode(split):
        src, tgt = read(data, split)
        return Dataset.from_dict({"input_ids": [x + [eos] for x in sp.Encode(src)],
                                  "labels": [y + [eos] for y in sp.Encode(tgt)]}), src, tgt

    train, _, _ = encode("train")
    train = train.filter(lambda r: len(r["input_ids"]) <= 250 and len(r["labels"]) <= 250)
    cfg = MarianConfig(vocab_size=sp.GetPieceSize(), d_model=256, encoder_layers=3, decoder_layers=3,
                       encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024, decoder_ffn_dim=1024,
                       activation_function="relu", dropout=0.2, max_position_embeddings=512, scale_embedding=True,
                       pad_token_id=sp.pad_id(), eos_token_id=eos, bos_token_id=sp.bos_id(),
                       decoder_start_token_id=sp.bos_id(), forced_eos_token_id=None,
                       share_encoder_decoder_embeddings=True, tie_word_embeddings=True)
    torch.manual_seed(1)
    model = MarianMTModel(cfg)
    start = {}

    class Budget(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            start["t"] = time.time()

        def on_step_end(self, args, state, control, **kw):
            if time.time() - start["t"] > budget * 60:
                control.should_training_stop = True

    real = {"tokens": 0, "padded": 0}

    def collate(features, inner=DataCollatorForSeq2Seq(hf_tok, model=model, label_pad_token_id=-100)):
        batch = inner(features)
        labels = batch["labels"]
        real["tokens"] += int((labels != -100).sum())
        real["padded"] += labels.numel()
        return batch

    args = Seq2SeqTrainingArguments(output_dir=str(out_dir), per_device_train_batch_size=128, learning_rate=1e-3,
                                    lr_scheduler_type="inverse_sqrt", warmup_steps=500, weight_decay=1e-4,
                                    adam_beta2=0.98, label_smoothing_factor=0.1, max_grad_norm=1.0, num_train_epochs=1000,
                                    save_strategy="no", logging_steps=50, report_to=[], seed=1, use_cpu=not torch.cuda.is_available(),
                                    dataloader_num_workers=0)
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=train, data_collator=collate, callbacks=[Budget()])
    t0 = time.time()
    trainer.train()
    seconds = time.time() - t0
    test, src, ref = encode("test_2016_flickr")
    model.eval()
    hyps = []
    with torch.no_grad():
        for i in range(0, len(src), 64):
            ids = [x + [eos] for x in sp.Encode(src[i: i + 64])]
            width = max(map(len, ids))
            inp = torch.tensor([x + [sp.pad_id()] * (width - len(x)) for x in ids])
            out = model.generate(input_ids=inp, attention_mask=(inp != sp.pad_id()).long(), num_beams=4,
                                 length_penalty=0.6, max_new_tokens=int(1.2 * width + 10))
            hyps += sp.Decode([[t for t in row.tolist() if t > 3] for row in out])
    bleu = sacrebleu.metrics.BLEU()
    score = bleu.corpus_score(hyps, [ref])
    return {"test_bleu": round(score.score, 2), "signature": str(bleu.get_signature()),
            "real_tokens_per_s": real["tokens"] / seconds, "train_seconds": seconds,
            "padding_fraction": 1 - real["tokens"] / real["padded"], "updates": trainer.state.global_step}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--budget-minutes", type=float, default=30.0)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--work", help="run directory (default: a new one under runs/multi30k_vs_hf/)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted seqattn run in --work")
    p.add_argument("--seqattn-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides of seqattn's recipe for this run")
    args = p.parse_args()
    if args.resume and not args.work:
        p.error("--resume needs --work, the directory of the run to continue")
    work = Path(args.work or ROOT / "runs" / "multi30k_vs_hf" / time.strftime("%Y%m%d-%H%M%S"))
    data, sa_dir = Path(args.data).resolve(), work / "seqattn"
    if not (sa_dir / "tokenizer" / "spm.model").is_file():
        train_tokenizer(data, sa_dir)
    result = {"commit": commit(), "machine": machine(), "date": time.strftime("%Y-%m-%d"), "budget_s": args.budget_minutes * 60}
    result["seqattn"] = run_seqattn(data, sa_dir, args.budget_minutes, args.seqattn_set, args.resume)
    print("seqattn:", result["seqattn"], flush=True)
    result["hf"] = run_hf(data, sa_dir / "tokenizer", work / "hf", args.budget_minutes)
    print("hf:", result["hf"], flush=True)
    device = "gpu" if torch.cuda.is_available() else "cpu"
    out = ROOT / "benchmarks" / "results" / f"multi30k_vs_hf-{device}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("seqattn", "hf", "budget_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
