"""Spoken digit strings composed from the Free Spoken Digit Dataset (FSDD).

Each utterance joins 3-6 recordings of one speaker with short pauses; the transcript is the
digits as words ("three one four"). One whole speaker is held out for the test split
(speaker-disjoint); validation uses the other speakers' recordings with index 45-49, which
training never sees.
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import numpy as np

from seqattn.errors import SeqattnError

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def load_recordings(root: Path) -> list[dict]:
    """Every recording: {digit, speaker, index, wave (float32), rate}."""
    import soundfile as sf

    meta, tar = root / "metadata.csv", root / "recordings.tar"
    for p in (meta, tar):
        if not p.is_file():
            raise SeqattnError(f"task.root: {p} not found (expected the FSDD folder with metadata.csv and recordings.tar)")
    with open(meta, newline="", encoding="utf-8") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    out = []
    with tarfile.open(tar) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if not member.isfile() or name not in rows:
                continue
            wave, rate = sf.read(io.BytesIO(archive.extractfile(member).read()), dtype="float32")
            r = rows[name]
            out.append({"digit": int(r["digit"]), "speaker": r["speaker"], "index": int(r["index"]),
                        "wave": wave, "rate": rate})
    return out


def compose(recordings: list[dict], size: int, min_digits: int, max_digits: int, gap_ms: float,
            seed: int) -> list[tuple[np.ndarray, int, str]]:
    """``size`` utterances (wave, rate, transcript), each from one speaker of ``recordings``."""
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[dict]] = {}
    for r in recordings:
        by_speaker.setdefault(r["speaker"], []).append(r)
    speakers = sorted(by_speaker)
    out = []
    for _ in range(size):
        pool = by_speaker[speakers[rng.integers(len(speakers))]]
        picks = [pool[i] for i in rng.integers(len(pool), size=rng.integers(min_digits, max_digits + 1))]
        rate = picks[0]["rate"]
        pieces = []
        for p in picks:
            gap = np.zeros(int(rate * gap_ms / 1000 * rng.uniform(0.5, 1.5)), dtype=np.float32)
            pieces += [gap, p["wave"]]
        pieces.append(np.zeros(int(rate * gap_ms / 1000), dtype=np.float32))
        out.append((np.concatenate(pieces), rate, " ".join(WORDS[p["digit"]] for p in picks)))
    return out


def trim(wave: np.ndarray, rate: int, top_db: float, frame_ms: float = 10.0) -> np.ndarray:
    """Cut leading and trailing silence: keep from the first to the last ``frame_ms`` frame whose
    energy is within ``top_db`` of the recording's loudest frame, plus one frame either side.
    FSDD speakers pad their recordings very differently (lucas: 0.57 s per digit raw, 0.36 s
    trimmed; yweweler: 0.35 / 0.29 s), which a location-based attention hears as speaking rate."""
    hop = max(1, int(rate * frame_ms / 1000))
    frames = len(wave) // hop
    if top_db <= 0 or frames < 3:
        return wave
    energy = np.square(wave[:frames * hop].reshape(frames, hop)).sum(1)  # (samples,) -> (frames, hop) -> (frames,)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (-top_db / 10))
    start, end = max(0, loud[0] - 1), min(frames, loud[-1] + 2)
    return wave[start * hop:end * hop]


def resample(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wave`` ``factor`` times faster (linear interpolation): tempo and pitch change together,
    as in Kaldi's speed perturbation."""
    if factor == 1.0:
        return wave
    return np.interp(np.arange(0, len(wave) - 1, factor), np.arange(len(wave)), wave).astype(np.float32)
