"""Speech: CTC decoding and alignment against brute force; the digit-strings task end to end on
a generated FSDD-shaped folder (tones instead of voices)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import ROOT, seqattn
from seqattn_speech import ctc


def collapse(path):
    return [k for k, _ in itertools.groupby(path) if k != ctc.BLANK]


def all_paths(S, V):
    return itertools.product(range(V), repeat=S)


def test_greedy_collapses_repeats_and_blanks():
    lp = torch.full((1, 7, 4), -10.0)
    for s, v in enumerate([1, 1, 0, 1, 2, 2, 0]):
        lp[0, s, v] = 0.0
    assert ctc.greedy(lp, torch.ones(1, 7, dtype=torch.bool)) == [[1, 1, 2]]


def test_prefix_beam_search_finds_the_most_probable_labelling():
    torch.manual_seed(0)
    lp = torch.log_softmax(torch.randn(5, 3) * 2, -1)
    totals: dict = {}
    for path in all_paths(5, 3):  # marginalise over every alignment of every labelling
        label = tuple(collapse(path))
        totals[label] = np.logaddexp(totals.get(label, -np.inf), float(sum(lp[s, v] for s, v in enumerate(path))))
    best = max(totals, key=totals.get)
    (got, score), *_ = ctc.prefix_beam_search(lp, beam=30)
    assert tuple(got) == best
    assert score == pytest.approx(totals[best], abs=1e-4)


def test_viterbi_is_the_best_path_reading_the_target():
    torch.manual_seed(1)
    lp = torch.log_softmax(torch.randn(6, 3), -1)
    target = [1, 1, 2]
    best = max((p for p in all_paths(6, 3) if collapse(p) == target),
               key=lambda p: float(sum(lp[s, v] for s, v in enumerate(p))))
    assert ctc.viterbi(lp, target) == list(best)


def test_ctc_loss_equals_brute_force():
    torch.manual_seed(2)
    lp = torch.log_softmax(torch.randn(1, 5, 3), -1)
    target = [1, 2]
    brute = -np.logaddexp.reduce([float(sum(lp[0, s, v] for s, v in enumerate(p)))
                                  for p in all_paths(5, 3) if collapse(p) == target])
    got = ctc.ctc_loss(lp, torch.ones(1, 5, dtype=torch.bool), torch.tensor([target]), torch.ones(1, 2, dtype=torch.bool))
    assert float(got) == pytest.approx(brute, abs=1e-4)


def fake_fsdd(root, pad_ms: float = 0.0):
    """Five speakers x ten digits x 8 takes of tones, in FSDD's layout; ``pad_ms`` of digital
    silence before and after each."""
    root.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    with tarfile.open(root / "recordings.tar", "w") as tar:
        for speaker_i, speaker in enumerate(["george", "jackson", "lucas", "nicolas", "yweweler"]):
            for digit in range(10):
                for index in [0, 1, 2, 3, 46, 47, 48, 49]:
                    t = np.arange(int(8000 * rng.uniform(0.15, 0.25))) / 8000
                    f = 300 + 150 * digit + 10 * speaker_i
                    wave = (0.5 * np.sin(2 * math.pi * f * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
                    pad = np.zeros(int(8 * pad_ms), dtype=np.float32)
                    wave = np.concatenate([pad, wave, pad])
                    buf = io.BytesIO()
                    sf.write(buf, wave, 8000, format="WAV", subtype="PCM_16")
                    name = f"{digit}_{speaker}_{index}.wav"
                    info = tarfile.TarInfo(f"recordings/{name}")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))
                    rows.append({"file": name, "digit": digit, "speaker": speaker, "index": index})
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "digit", "speaker", "index"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("recipe", ["fsdd_ctc", "fsdd_gaussian", "fsdd_joint_ctc"])
def test_digit_strings_train_and_report_ter(tmp_path, recipe):
    fake_fsdd(tmp_path / "fsdd")
    sets = [f"task.root={tmp_path / 'fsdd'}", "task.train_size=120", "task.valid_size=10", "task.test_size=10",
            "train.max_steps=6", "train.eval_every=3", "train.save_every=3", "train.threads=1", "train.log_every=2",
            "model.encoder.hidden=16", "model.encoder.channels=8"]
    out = seqattn("run", ROOT / f"recipes/{recipe}.yaml", "--output", tmp_path / "run",
                  *[a for s in sets for a in ("--set", s)])
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((tmp_path / "run/results.json").read_text())
    assert 0 <= results["test"]["ter"]
    assert (tmp_path / "run/tokenizer/words.json").is_file()


def test_missing_fsdd_folder_is_bad_input(tmp_path):
    out = seqattn("check", ROOT / "recipes/fsdd_ctc.yaml", "--set", f"task.root={tmp_path / 'nope'}")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "task.root: folder not found" in out.stderr


def test_alignments_of_both_scorers_are_plotted(tmp_path):
    from seqattn import recipe as recipes
    from seqattn.plot import plot_alignment
    from seqattn_speech.task import DigitStringsTask

    fake_fsdd(tmp_path / "fsdd")
    for name in ("fsdd_ctc", "fsdd_gaussian", "fsdd_joint_ctc"):
        r = recipes.load(ROOT / f"recipes/{name}.yaml", [f"task.root={tmp_path / 'fsdd'}", "task.train_size=40",
                                                           "task.valid_size=4", "task.test_size=4",
                                                           "model.encoder.hidden=8", "model.encoder.channels=8"])
        task: DigitStringsTask = r.task.build()
        task.setup(tmp_path / name, fit=True)
        model = task.build_model(r.model).eval()
        index = np.arange(2)
        for a in task.alignments(model, "test", index, r.search, torch.device("cpu")):
            assert a.weights.shape == (len(a.target), len(a.source))
            plot_alignment(a, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_spec_augment_masks_bands_and_spans_inside_each_utterance():
    from seqattn_speech.task import spec_augment

    torch.manual_seed(0)
    feats = torch.ones(4, 50, 40)
    mask = torch.arange(50)[None, :] < torch.tensor([50, 30, 10, 50])[:, None]
    out = spec_augment(feats, mask, freq_masks=2, freq_width=8, time_masks=2, time_width=0.2)
    assert out.shape == feats.shape and set(out.unique().tolist()) <= {0.0, 1.0}
    zero_bins = (out == 0).all(1).sum(1)  # whole mel bands removed per utterance
    assert (zero_bins <= 16).all()
    for row, length in enumerate([50, 30, 10, 50]):
        zero_frames = (out[row, :length] == 0).all(1).sum()
        assert zero_frames <= 2 * int(0.2 * length)  # time masks stay within the utterance
    assert (out == 0).any()


def test_features_vtlp_cepstra_and_gain_floor():
    from seqattn_speech.features import _filters, log_mel

    rng = np.random.default_rng(0)
    t = np.arange(8000) / 8000
    wave = (np.sin(2 * math.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    wave[2000:3000] = 0.0  # digital silence, as between the digits of an utterance
    plain = log_mel(wave, 8000)
    assert torch.equal(log_mel(wave, 8000, warp=1.0), plain) and plain.shape == (101, 40)
    # VTLP stretches the spectrum: with warp > 1 a 1.5 kHz component lands in a higher mel band
    peak = {w: int(_filters(256, 40, 8000, w)[48].argmax()) for w in (0.9, 1.0, 1.1)}  # bin 48 = 1500 Hz
    assert peak[0.9] < peak[1.0] < peak[1.1]
    assert torch.allclose(_filters(256, 40, 8000, 1.1).sum(0), _filters(256, 40, 8000, 1.0).sum(0), rtol=0.5)
    # MFCC: the orthonormal DCT of the log-mels, truncated
    assert log_mel(wave, 8000, n_ceps=13).shape == (101, 13)
    # the relative floor makes the features independent of the recording's gain; the fixed one does not
    assert torch.allclose(log_mel(0.01 * wave, 8000, floor_db=60), log_mel(wave, 8000, floor_db=60), atol=1e-4)
    assert not torch.allclose(log_mel(0.01 * wave, 8000), plain, atol=1e-2)


def test_trim_cuts_leading_and_trailing_silence_only(tmp_path):
    from seqattn import recipe as recipes
    from seqattn_speech.fsdd import trim
    from seqattn_speech.task import DigitStringsTask

    rng = np.random.default_rng(0)
    speech = np.sin(2 * math.pi * 440 * np.arange(2400) / 8000).astype(np.float32)  # 300 ms = 30 frames
    speech[1000:1400] = 0.0  # a pause inside the word stays
    wave = np.concatenate([1e-4 * rng.standard_normal(1600), speech, 1e-4 * rng.standard_normal(3200)]).astype(np.float32)
    # speech fills 10 ms frames 20..49; one frame of margin either side is kept
    assert np.array_equal(trim(wave, 8000, top_db=30), wave[19 * 80:51 * 80])
    assert np.array_equal(trim(wave, 8000, top_db=0), wave)
    assert np.array_equal(trim(wave[:100], 8000, top_db=30), wave[:100])  # too short to judge
    # the task option trims every recording before the utterances are composed
    fake_fsdd(tmp_path / "fsdd", pad_ms=100)
    frames = {}
    for db in (0.0, 30.0):
        r = recipes.load(ROOT / "recipes/fsdd_ctc.yaml", [f"task.root={tmp_path / 'fsdd'}", "task.train_size=20",
                                                           "task.valid_size=2", "task.test_size=2", f"task.trim_db={db}"])
        task: DigitStringsTask = r.task.build()
        task.setup(tmp_path / f"run{db}", fit=True)
        frames[db] = task.data["train"]["frames"]
    digits = np.array([len(t.split()) for t in task.data["train"]["text"]])
    assert np.allclose(frames[0.0] - frames[30.0], 2 * 10 * digits, atol=3 * digits)  # ~200 ms less per digit


def test_perturbed_training_batches_are_fresh_and_masked(tmp_path):
    from seqattn import recipe as recipes

    fake_fsdd(tmp_path / "fsdd")
    r = recipes.load(ROOT / "recipes/fsdd_ctc.yaml", [f"task.root={tmp_path / 'fsdd'}", "task.train_size=20",
                                                       "task.valid_size=4", "task.test_size=4",
                                                       "task.speed_perturb=0.2", "task.vtlp=0.1"])
    task = r.task.build()
    task.setup(tmp_path / "run", fit=True)
    index = np.arange(6)
    torch.manual_seed(0)
    a, b = task.collate("train", index), task.collate("train", index)
    assert not torch.equal(a.src, b.src) or a.src.shape != b.src.shape  # new factors each time
    lengths = a.src_mask.sum(1).numpy()
    nominal = task.data["train"]["frames"][index]
    assert (np.abs(lengths - nominal) <= 0.2 * nominal + 2).all() and (lengths != nominal).any()
    assert torch.equal(a.tgt_out, b.tgt_out)
    torch.manual_seed(0)
    assert torch.equal(task.collate("train", index).src, a.src)  # torch's RNG decides: resumable
    valid = task.collate("valid", np.arange(4))
    assert torch.equal(valid.src_mask.sum(1), torch.from_numpy(task.data["valid"]["frames"][:4]))


def _joint_model(weight: float):
    from seqattn.plugins import get_registry
    from seqattn.recipe import Validator

    spec = Validator(get_registry()).component(
        {"name": "joint_ctc_attention", "decode_ctc_weight": weight, "encoder": {"name": "speech_rnn", "hidden": 8, "channels": 8},
         "decoder": {"name": "rnn_luong", "embed_dim": 8, "hidden": 8, "layers": 1, "attention": "ctc"}}, "model", "model")
    torch.manual_seed(0)
    return spec.build(6, 5, 2).eval()  # 6 features, vocabulary 5 (blank 0, EOS 2)


def test_joint_decoder_adds_ctc_prefix_scores():
    """With all weight on CTC, each step's score of token c is psi(h + c) - psi(h), where psi is
    the brute-force CTC prefix probability (all frame paths whose labelling starts with h + c),
    and EOS scores log p_ctc(h) - psi(h)."""
    model = _joint_model(1.0)
    src, mask = torch.randn(2, 17, 6), torch.tensor([[True] * 17, [True] * 12 + [False] * 5])
    memory, mem_mask = model.encode(src, mask)  # 17 -> 5 frames, 12 -> 3
    lp = model.decoder.ctc_log_probs(memory).double().detach()
    state = model.decoder.init_state(memory, mem_mask)
    prefix, tokens = [], torch.tensor([1, 1])  # BOS is 1 here: the first step always sees the empty prefix
    for t, nxt in enumerate([3, 4, 3]):
        scores, state = model.decoder.step(tokens, state)
        scores = scores.detach()  # compared as Python floats
        for row in range(2):
            S = int(mem_mask[row].sum())
            prob = {}
            for path in all_paths(S, 5):
                label = tuple(collapse(path))
                prob[label] = np.logaddexp(prob.get(label, -np.inf), float(sum(lp[row, s, v] for s, v in enumerate(path))))
            def psi(h):
                return np.logaddexp.reduce([p for lab, p in prob.items() if lab[: len(h)] == tuple(h)] or [-np.inf])
            for c in (1, 3, 4):
                if np.isfinite(psi(prefix + [c])):
                    assert float(scores[row, c]) == pytest.approx(psi(prefix + [c]) - psi(prefix), abs=1e-4), (t, row, c)
            if prob.get(tuple(prefix), -np.inf) > -1e9:
                assert float(scores[row, 2]) == pytest.approx(prob[tuple(prefix)] - psi(prefix), abs=1e-4)
        prefix.append(nxt)
        tokens = torch.tensor([nxt, nxt])


def test_joint_beam_search_keeps_ctc_state_with_its_hypothesis():
    """Beam search over the joint decoder equals a reference search that re-scores every
    hypothesis from scratch (no state reordering), so the CTC state travels with its beam."""
    from seqattn.search import beam_search

    model = _joint_model(0.5)
    src, mask = torch.randn(3, 21, 6), torch.tensor([[True] * 21, [True] * 15 + [False] * 6, [True] * 9 + [False] * 12])
    got = beam_search(model, src, mask, bos=1, eos=2, beam=3, length_penalty_alpha=0.0, max_len_a=0.0, max_len_b=4,
                      n_best=3, min_len=1)
    memory, mem_mask = model.encode(src, mask)
    for b in range(3):
        def score(hyp):  # joint log-score of hyp + EOS, stepping one fresh state along it
            state = model.decoder.init_state(memory[b: b + 1], mem_mask[b: b + 1])
            total, prev = 0.0, 1
            for tok in hyp + [2]:
                s, state = model.decoder.step(torch.tensor([prev]), state)
                total, prev = total + float(s[0, tok].detach()), tok
            return total
        for h in got[b]:
            assert h.score == pytest.approx(score(h.tokens), abs=1e-3)
