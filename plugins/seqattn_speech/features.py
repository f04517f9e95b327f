"""Log-mel filterbank features with torch.stft and the mel filters of transformers.audio_utils."""

from __future__ import annotations

import functools

import numpy as np
import torch


@functools.lru_cache(maxsize=8)
def _filters(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=20.0,
                           max_frequency=sample_rate / 2, sampling_rate=sample_rate, norm="slaney", mel_scale="slaney")
    return torch.from_numpy(bank).float()  # (F, M)


def log_mel(wave: np.ndarray, sample_rate: int, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0) -> torch.Tensor:
    """(samples,) float waveform -> (frames, n_mels), normalised per utterance (mean 0, std 1)."""
    win, hop = int(sample_rate * win_ms / 1000), int(sample_rate * hop_ms / 1000)
    n_fft = 1 << (win - 1).bit_length()
    x = torch.from_numpy(np.asarray(wave, dtype=np.float32))
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, window=torch.hann_window(win), return_complex=True)
    power = spec.abs().square().T  # (F, frames) -> (frames, F)
    mel = torch.log(power @ _filters(n_fft, n_mels, sample_rate) + 1e-6)  # (frames, M)
    return (mel - mel.mean(0)) / (mel.std(0) + 1e-5)
