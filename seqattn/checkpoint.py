"""Checkpoints: safetensors weights, weights-only tensors and JSON, each written atomically.

A checkpoint is a folder ``checkpoints/step_00000100`` holding ``model.safetensors``,
``optimizer.pt`` (loads with ``weights_only=True``), ``rng_<rank>.pt`` and ``state.json``. It is
written as ``step_00000100.tmp`` and renamed when complete, so the newest folder without the
``.tmp`` suffix is always whole, whenever the process is killed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from seqattn.errors import SeqattnError


def _fsync_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _fsync_replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    _fsync_replace(tmp, path)


def save_weights(model: torch.nn.Module, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_model(model, str(tmp))  # handles tied (shared) parameters
    _fsync_replace(tmp, path)


def load_weights(model: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise SeqattnError(f"{path}: checkpoint weights not found")
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise SeqattnError(f"{path}: corrupt or incompatible checkpoint ({' '.join(str(exc).split())[:200]})") from None
    if missing or unexpected:
        raise SeqattnError(f"{path}: checkpoint does not match the model (missing {sorted(missing)[:3]}, "
                           f"unexpected {sorted(unexpected)[:3]})")


def torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    _fsync_replace(tmp, path)


def torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SeqattnError(f"{path}: corrupt checkpoint file ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeqattnError(f"{path}: corrupt checkpoint file ({' '.join(str(exc).split())[:160]})") from None


def rng_state() -> dict:
    """The generators training draws from (dropout): torch's CPU and CUDA states."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Finished checkpoint folders, oldest first."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and not p.name.endswith(".tmp")]
    return sorted(done, key=lambda p: p.name)


def begin(run_dir: Path, step: int) -> Path:
    tmp = checkpoint_dir(run_dir) / f"step_{step:08d}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def commit(tmp: Path, keep_last: int) -> Path:
    final = tmp.with_name(tmp.name[: -len(".tmp")])
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in complete_checkpoints(tmp.parent.parent)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def average(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of several checkpoints' weights (float32 accumulation)."""
    total: dict[str, torch.Tensor] = {}
    for p in paths:
        try:
            tensors = load_file(str(p / "model.safetensors"))
        except (SafetensorError, OSError) as exc:
            raise SeqattnError(f"{p}: corrupt checkpoint ({exc})") from None
        for k, v in tensors.items():
            total[k] = total.get(k, 0) + v.float()
    return {k: (v / len(paths)) for k, v in total.items()}


def save_tensors(tensors: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    _fsync_replace(tmp, path)
