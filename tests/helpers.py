"""Test helpers: tiny recipes on generated data (no network, nothing from ../shared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def tiny_recipe(train: dict | None = None, size: int = 400, **task) -> dict:
    """A recipe that trains a very small Transformer on the generated numbers corpus."""
    return {
        "task": {
            "name": "translation", "source_lang": "en", "target_lang": "de",
            "train": {"corpus": {"name": "numbers_en_de", "size": size, "seed": 1}},
            "valid": {"corpus": {"name": "numbers_en_de", "size": 20, "seed": 2}},
            "test": {"corpus": {"name": "numbers_en_de", "size": 20, "seed": 3}},
            "tokenizer": {"name": "sentencepiece", "vocab_size": 120},
            **task,
        },
        "model": {
            "name": "encoder_decoder", "share_embeddings": True,
            "encoder": {"name": "transformer", "d_model": 32, "layers": 1, "heads": 2, "ffn": 64},
            "decoder": {"name": "transformer", "d_model": 32, "layers": 1, "heads": 2, "ffn": 64},
        },
        "train": {"max_steps": 12, "max_tokens": 600, "warmup_steps": 4, "lr": 0.003, "log_every": 2,
                  "eval_every": 6, "save_every": 6, "threads": 1, **(train or {})},
        "search": {"beam": 2, "max_len_b": 5},
    }


def write_recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def seqattn(*args: str, cwd: Path | None = None, stdin: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqattn.cli", *map(str, args)], cwd=cwd or ROOT, env=ENV,
                          input=stdin, capture_output=True, text=True, timeout=timeout)
