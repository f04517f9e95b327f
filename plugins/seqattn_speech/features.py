"""Log-mel filterbank features with torch.stft and the mel filters of transformers.audio_utils,
optionally with vocal tract length perturbation (VTLP, Jaitly & Hinton 2013)."""

from __future__ import annotations

import functools

import numpy as np
import torch


@functools.lru_cache(maxsize=64)
def _filters(n_fft: int, n_mels: int, sample_rate: int, warp: float = 1.0) -> torch.Tensor:
    """Mel filters over the FFT bins (F, M). With ``warp`` != 1, bin frequency f feeds the filters
    as if it were g(f): g(f) = warp * f up to a knee, then linear so that Nyquist maps to itself
    (the piecewise-linear VTLP warp), i.e. the spectrum is stretched by ``warp``."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=20.0,
                           max_frequency=sample_rate / 2, sampling_rate=sample_rate, norm="slaney", mel_scale="slaney")
    if warp != 1.0:
        nyquist = sample_rate / 2
        freqs = np.linspace(0.0, nyquist, n_fft // 2 + 1)  # frequency of each FFT bin
        knee = 0.8 * nyquist * min(warp, 1.0) / warp
        warped = np.where(freqs <= knee, warp * freqs,
                          nyquist - (nyquist - warp * knee) / (nyquist - knee) * (nyquist - freqs))
        bank = np.stack([np.interp(warped, freqs, bank[:, m]) for m in range(n_mels)], axis=1)  # (F, M)
    return torch.from_numpy(bank).float()


@functools.lru_cache(maxsize=8)
def _dct(n_mels: int, n_ceps: int) -> torch.Tensor:
    """Orthonormal DCT-II basis (M, C): log-mel -> the first ``n_ceps`` cepstral coefficients (MFCC)."""
    m = torch.arange(n_mels, dtype=torch.float64)
    basis = torch.cos(torch.pi / n_mels * (m[:, None] + 0.5) * torch.arange(n_ceps, dtype=torch.float64)[None, :])
    basis[:, 0] /= 2 ** 0.5
    return (basis * (2 / n_mels) ** 0.5).float()


def log_mel(wave: np.ndarray, sample_rate: int, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0,
            warp: float = 1.0, n_ceps: int = 0, floor_db: float = 0.0) -> torch.Tensor:
    """(samples,) float waveform -> (frames, n_mels), or (frames, n_ceps) cepstra when ``n_ceps`` > 0,
    normalised per utterance (mean 0, std 1). ``warp`` is the VTLP factor (rounded to 0.01 so the
    warped filters are cached). ``floor_db`` > 0 floors each mel energy that far below the utterance's
    loudest one instead of at 1e-6, so the features do not depend on the recording's gain."""
    win, hop = int(sample_rate * win_ms / 1000), int(sample_rate * hop_ms / 1000)
    n_fft = 1 << (win - 1).bit_length()
    x = torch.from_numpy(np.asarray(wave, dtype=np.float32))
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, window=torch.hann_window(win), return_complex=True)
    power = spec.abs().square().T  # (F, frames) -> (frames, F)
    mel = power @ _filters(n_fft, n_mels, sample_rate, round(warp, 2))  # (frames, M)
    mel = torch.log(mel.clamp(min=mel.max() * 10 ** (-floor_db / 10)) if floor_db > 0 else mel + 1e-6)
    if n_ceps:
        mel = mel @ _dct(n_mels, n_ceps)  # (frames, M) -> (frames, C)
    return (mel - mel.mean(0)) / (mel.std(0) + 1e-5)
