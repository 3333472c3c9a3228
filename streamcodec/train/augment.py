"""Field conditions for training, applied on the fly to clean log-mel crops (issue 14).

The corpus is clean and levelled; a node's microphone is not. Each training example gets, at
random: a level change (quiet speech loses its detail to the log-mel floor), room reverberation,
8 kHz or telephone band-limiting, and background noise at 0..30 dB SNR (real recordings,
synthetic colours and hum, babble of other corpus speakers). Everything is done in the log-mel
domain, in power (noise and reverberation add as powers, which is what the mel magnitudes of a
mixture approximate), so no audio needs to be stored or re-analysed. Waveform effects without a
simple power-domain form (clipping) are left out.

`field_pair` returns the network's input and its target: the augmented crop and the clean crop,
both level-normalised with the gain measured on the augmented one, as the codec does.
"""

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from streamcodec.dsp.level import apply_gain, gain_for, measure_level
from streamcodec.dsp.mel import MEL_FB, logmel_to_power, power_to_logmel
from streamcodec.dsp.params import HOP, SAMPLE_RATE, WIN_LENGTH

MEL_HZ = np.argmax(MEL_FB, axis=1) * SAMPLE_RATE / WIN_LENGTH  # centre of each mel band


@dataclass
class AugmentConfig:
    p_clean: float = 0.5  # examples left as they are (but for the level)
    level_db: tuple[float, float] = (-40.0, 10.0)  # level change before coding
    p_reverb: float = 0.2
    p_bandlimit: float = 0.2
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (0.0, 30.0)
    p_babble: float = 0.25  # of the noisy examples


def reverb(p: np.ndarray, rt60: float, wet: float) -> np.ndarray:
    """(frames, mels) power -> with an exponential late-reverberation tail of decay time rt60."""
    a = 10.0 ** (-6.0 * HOP / SAMPLE_RATE / rt60)  # power decay per STFT frame (60 dB in rt60)
    tail = lfilter([1.0 - a], [1.0, -a], p, axis=0)
    return p + wet * tail


def band_limit(p: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """Attenuate bands outside low..high Hz (60 dB over a few hundred Hz), as an 8 kHz or
    telephone capture would."""
    att = np.clip((MEL_HZ - high_hz) / 400.0, 0, 1) + np.clip((low_hz - MEL_HZ) / 150.0, 0, 1)
    return p * 10.0 ** (-6.0 * np.minimum(att, 1.0))


class FieldAugmenter:
    """Makes (input, target) pairs from clean crops; `noise` maps names to unit-RMS noise log-mel,
    `babble` draws clean speech crops of other speakers (n, frames, mels)."""

    def __init__(self, noise: dict[str, np.ndarray], babble, target_db: float, seed: int,
                 cfg: AugmentConfig | None = None) -> None:
        self.noise = [v for v in noise.values() if len(v) > 256]
        self.noise_power = [float(np.mean(logmel_to_power(v[:: max(1, len(v) // 2000)]))) for v in self.noise]
        self.babble = babble
        self.target_db = target_db
        self.cfg = cfg or AugmentConfig()
        self.rng = np.random.default_rng(seed)

    def _noise(self, frames: int) -> np.ndarray:
        """A unit-power (frames, mels) noise power crop."""
        rng = self.rng
        if rng.random() < self.cfg.p_babble:
            talkers = logmel_to_power(self.babble(int(rng.integers(3, 7)), frames))
            p = np.sum(talkers * 10.0 ** (rng.uniform(-3, 3, (len(talkers), 1, 1)) / 10), axis=0)
            return p / np.mean(p)
        k = int(rng.integers(len(self.noise)))
        start = int(rng.integers(len(self.noise[k]) - frames))
        return logmel_to_power(self.noise[k][start : start + frames]) / self.noise_power[k]

    def degrade(self, clean: np.ndarray) -> np.ndarray:
        """One (frames, mels) clean crop -> a field version (same level reference)."""
        cfg, rng = self.cfg, self.rng
        if rng.random() < cfg.p_clean:
            return clean
        p = logmel_to_power(clean)
        if rng.random() < cfg.p_reverb:
            p = reverb(p, rng.uniform(0.2, 0.9), rng.uniform(0.2, 1.5))
        if rng.random() < cfg.p_noise:
            speech = 10.0 ** (float(measure_level(clean)) / 10.0)
            snr = rng.uniform(*cfg.snr_db)
            p = p + self._noise(len(clean)) * speech * 10.0 ** (-snr / 10.0)
        if rng.random() < cfg.p_bandlimit:
            p = band_limit(p, 300.0, 3400.0) if rng.random() < 0.5 else band_limit(p, 0.0, 3800.0)
        return power_to_logmel(p)

    def field_pair(self, clean: np.ndarray, piece: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(n, frames, mels) clean crops -> (input, target), level-normalised as the codec does:
        each crop, or with `piece`, each piece of that many frames on its own (a crop of several
        codec frames, each levelled by the encoder alone; the pieces come out as items)."""
        shift = self.rng.uniform(*self.cfg.level_db, len(clean))
        clean = apply_gain(clean, shift)  # quiet input loses what falls under the floor
        noisy = np.stack([self.degrade(c) for c in clean])
        if piece:
            noisy, clean = (a.reshape(-1, piece, a.shape[-1]) for a in (noisy, clean))
        gain = gain_for(measure_level(noisy), self.target_db)
        return apply_gain(noisy, gain), apply_gain(clean, gain)
