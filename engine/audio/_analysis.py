"""Analysis: functions of ``(y, sr)`` returning arrays, and :func:`describe`, which summarizes
them into one row of named descriptors (engine/audio/_columns.py lists and documents the names).

Cost, measured on a 30 s clip at 22,050 Hz on one core of the project machine (warm): one STFT
shared by every spectral descriptor, chroma without tuning estimation (8 ms instead of 155 ms),
and a harmonic/percussive split by median filters on a pooled mel spectrogram (~55 ms) instead of
``librosa.effects.hpss`` on the full STFT (~2,500 ms): the whole row costs ~0.4 s, about 75x real
time (benchmarks/audio.py measures it).
"""

from __future__ import annotations

import numpy as np

from ._columns import N_CONTRAST, N_MFCC, ExtractorParams
from ._kernels import ensure_compiled

# Krumhansl-Kessler key profiles (probe-tone ratings), tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
LEVEL_GATE_DB = -70.0  # frames quieter than this do not count in loudness_range
_TINY = 1e-12


def magnitude(y: np.ndarray, params: ExtractorParams) -> np.ndarray:
    """|STFT| of shape (1 + n_fft // 2, n_frames)."""
    import librosa

    return np.abs(librosa.stft(y, n_fft=params.n_fft, hop_length=params.hop_length))


def harmonic_percussive(mel_power: np.ndarray, *, kernel: int, pool: int) -> tuple[np.ndarray, float]:
    """Harmonic share of each pooled frame's energy and of the whole clip's, from ``mel_power`` of
    shape (n_mels, n_frames) pooled ``pool`` frames at a time.

    The split of Fitzgerald (2010) as ``librosa.decompose.hpss`` does it (median across time keeps
    sustained partials, median across frequency keeps broadband hits; Wiener masks of power 2),
    on a spectrogram ~16x smaller than the full STFT, so it costs ~55 ms per 30 s instead of
    ~2.5 s. Returns the per-frame share, shape (max(1, n_frames // pool),), and the overall share.
    """
    from scipy.signal import medfilt2d

    n = mel_power.shape[1] // pool * pool
    if n == 0:
        pooled = mel_power.mean(axis=1, keepdims=True)
    else:
        pooled = mel_power[:, :n].reshape(mel_power.shape[0], -1, pool).mean(axis=2)
    pooled = np.ascontiguousarray(pooled, dtype=np.float64)
    k = kernel | 1  # medfilt2d needs odd kernels
    harmonic = medfilt2d(pooled, (1, k))
    percussive = medfilt2d(pooled, (k, 1))
    h2, p2 = harmonic**2, percussive**2
    mask = (h2 + _TINY) / (h2 + p2 + 2 * _TINY)
    harmonic_energy = mask * pooled
    share = (harmonic_energy.sum(axis=0) + _TINY) / (pooled.sum(axis=0) + 2 * _TINY)
    return share, float((harmonic_energy.sum() + _TINY) / (pooled.sum() + 2 * _TINY))


def key_of(chroma_mean: np.ndarray) -> tuple[int, int, float]:
    """(pitch class 0..11 with C = 0, mode 1 major / 0 minor, correlation) of the best-matching
    Krumhansl-Kessler key profile for a mean chroma vector of shape (12,)."""
    c = chroma_mean - chroma_mean.mean()
    if not np.any(c):
        return 0, 1, 0.0
    best = (0, 1, -2.0)
    for mode, profile in ((1, MAJOR_PROFILE), (0, MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(c, np.roll(profile, tonic))[0, 1])
            if r > best[2]:
                best = (tonic, mode, r)
    return best


def tempo_confidence(onset_env: np.ndarray, sr: int, hop_length: int, tempo: float) -> float:
    """Mean autocorrelation tempogram (lag 0 = 1) at the tempo's lag: near 1 for a steady pulse,
    near 0 for no pulse."""
    import librosa

    if tempo <= 0 or len(onset_env) < 8:
        return 0.0
    gram = librosa.feature.tempogram(onset_envelope=onset_env, sr=sr, hop_length=hop_length,
                                     win_length=min(384, len(onset_env)))
    ac = gram.mean(axis=1)
    lag = 60.0 * sr / (hop_length * tempo)
    lo, hi = max(1, int(np.floor(lag)) - 1), min(len(ac) - 1, int(np.ceil(lag)) + 1)
    return float(np.clip(ac[lo:hi + 1].max(), 0.0, 1.0)) if lo <= hi else 0.0


def refine_tempo(tempo: float, beat_times: np.ndarray) -> float:
    """The tracker's tempo, refined by the beats it placed. librosa's estimate is a tempogram lag,
    so at hop 512 it moves in ~5% steps (120 BPM reads 117.5); the mean of the beat intervals near
    that period has sub-frame precision (120.0)."""
    if tempo <= 0 or len(beat_times) < 4:
        return tempo
    period = 60.0 / tempo
    intervals = np.diff(beat_times)
    steady = intervals[np.abs(intervals - period) < 0.25 * period]
    return 60.0 / float(steady.mean()) if len(steady) >= 3 else tempo


def describe(y: np.ndarray, sr: int, params: ExtractorParams) -> dict[str, float]:
    """Every descriptor of ``y`` (mono float32 of shape (n_samples,) at ``sr`` Hz), by name, in
    the order of ``_columns.DESCRIPTORS``. All values are finite. A process's first call compiles
    (or loads) librosa's numba kernels under a lock first (engine/audio/_kernels.py)."""
    if sr != params.sample_rate:
        raise ValueError(f"describe() needs audio at the extractor's {params.sample_rate} Hz, got {sr} Hz")
    compile_kernels(params)
    return _describe(y, sr, params)


def compile_kernels(params: ExtractorParams) -> None:
    """Once per process: one short synthetic clip through the analysis, so numba compiles (or loads)
    every librosa kernel it uses, one process at a time (engine/audio/_kernels.py)."""
    ensure_compiled(lambda: _describe(synthetic_clip(params.sample_rate), params.sample_rate, params))


def _describe(y: np.ndarray, sr: int, params: ExtractorParams) -> dict[str, float]:
    import librosa

    hop, n_fft = params.hop_length, params.n_fft
    out: dict[str, float] = {}

    def summary(name: str, values: np.ndarray) -> None:
        out[f"{name}_mean"] = float(np.mean(values))
        out[f"{name}_var"] = float(np.var(values))

    mag = magnitude(y, params)
    power = mag**2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=params.n_mels)
    mel_db = librosa.power_to_db(mel)
    # The key reads the square root of the chroma energy: a long loud chord counts more than a quiet
    # passing note, but less than linearly, so one instrument's strong partials do not decide it. On 20
    # fluidsynth renderings (5 GM instruments x 4 keys, drums on) it found 17 keys; per-frame max-scaled
    # chroma or plain energy found 12, chroma_cqt 18 at several times the cost. The GTZAN-layout chroma
    # summaries scale each frame to max 1, as librosa's default does.
    chroma_energy = librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0, norm=None)
    chroma = librosa.util.normalize(chroma_energy, norm=np.inf, axis=0)
    rms = librosa.feature.rms(S=mag, frame_length=n_fft)[0]
    summary("chroma_stft", chroma)
    summary("rms", rms)
    summary("spectral_centroid", librosa.feature.spectral_centroid(S=mag, sr=sr)[0])
    summary("spectral_bandwidth", librosa.feature.spectral_bandwidth(S=mag, sr=sr)[0])
    summary("rolloff", librosa.feature.spectral_rolloff(S=mag, sr=sr)[0])
    summary("zero_crossing_rate", librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[0])

    # GTZAN's harmony/perceptr are moments of the harmonic and percussive waveforms; the split's
    # energy shares carry the waveform's mean and variance over to the two parts.
    share, h_share = harmonic_percussive(mel, kernel=params.hpss_kernel, pool=params.hpss_pool)
    y_mean, y_var = float(np.mean(y)), float(np.var(y))
    out["harmony_mean"], out["harmony_var"] = y_mean * h_share, y_var * h_share
    out["perceptr_mean"], out["perceptr_var"] = y_mean * (1 - h_share), y_var * (1 - h_share)

    onset_env = librosa.onset.onset_strength(S=mel_db, sr=sr)
    tempo_arr, beats = librosa.beat.beat_track(onset_envelope=onset_env, sr=sr, hop_length=hop)
    tempo = refine_tempo(float(np.atleast_1d(tempo_arr)[0]), beats * hop / sr)
    out["tempo"] = tempo
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    for i in range(N_MFCC):
        summary(f"mfcc{i + 1}", mfcc[i])

    seconds = len(y) / sr
    out["tempo_confidence"] = tempo_confidence(onset_env, sr, hop, tempo)
    mean_onset = float(onset_env.mean())
    out["beat_strength"] = float(onset_env[beats].mean() / mean_onset) if len(beats) and mean_onset > 0 else 0.0
    if len(beats) >= 3:
        intervals = np.diff(beats).astype(np.float64)
        out["beat_regularity"] = float(np.clip(1.0 - intervals.std() / intervals.mean(), 0.0, 1.0))
    else:
        out["beat_regularity"] = 0.0
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=hop)
    out["onset_rate"] = len(onsets) / seconds if seconds > 0 else 0.0
    key, mode, strength = key_of(np.sqrt(chroma_energy).mean(axis=1))
    out["key"], out["mode"], out["key_strength"] = float(key), float(mode), strength
    out["loudness"] = float(10 * np.log10(np.mean(np.square(y, dtype=np.float64)) + _TINY))
    levels = 20 * np.log10(rms + 1e-10)
    gated = levels[levels > LEVEL_GATE_DB]
    out["loudness_range"] = float(np.percentile(gated, 95) - np.percentile(gated, 10)) if len(gated) else 0.0
    summary("spectral_flatness", librosa.feature.spectral_flatness(S=mag)[0])
    contrast = librosa.feature.spectral_contrast(S=mag, sr=sr)
    for i in range(N_CONTRAST):
        summary(f"spectral_contrast{i + 1}", contrast[i])
    summary("harmonic_ratio", share)
    for i in range(12):
        summary(f"chroma{i + 1}", chroma[i])
    for name, value in out.items():
        if not np.isfinite(value):
            out[name] = 0.0  # a degenerate clip (e.g. one frame); never NaN in a table
    return out


def synthetic_clip(sr: int, seconds: float = 3.0, *, bpm: float = 120.0, seed: int = 0) -> np.ndarray:
    """A short click track over an A minor triad: exercises every code path (beats, pitch, noise),
    for warming numba's JIT before the first real clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 261.63, 329.63))
    y = np.asarray(y, dtype=np.float64)
    click = int(0.03 * sr)
    for start in (np.arange(0, seconds, 60.0 / bpm) * sr).astype(int):
        end = min(start + click, len(y))
        y[start:end] += 0.6 * np.exp(-np.arange(end - start) / (0.005 * sr)) * rng.standard_normal(end - start)
    return y.astype(np.float32)
