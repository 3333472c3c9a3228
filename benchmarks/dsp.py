"""Cost and quality of each stage of the speech signal path, on real speech, on one core.

    .venv/bin/python benchmarks/dsp.py            # prints a table, writes benchmarks/results/dsp.md

Speech: prompts of the Italian and French Asterisk voices (Debian packages named in DESIGN.md).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
from pesq import pesq  # noqa: E402
from pystoi import stoi  # noqa: E402

from benchmarks import write_result  # noqa: E402
from streamcodec.dsp import (  # noqa: E402
    griffin_lim, istft, logmel, logmel_to_mel, mel_to_magnitude, pghi, rtpghi, stft, synthesize,
)
from streamcodec.dsp.params import SAMPLE_RATE  # noqa: E402
from streamcodec.train.debian import fetch_package, read_audio  # noqa: E402

SOURCES = {
    "asterisk-core-sounds-it-g722": "usr/share/asterisk/sounds/it_IT_m_Carlo",
    "asterisk-core-sounds-fr-g722": "usr/share/asterisk/sounds/fr",
}
SECONDS_PER_SOURCE = 30.0


def load_speech() -> np.ndarray:
    clips = []
    for package, folder in SOURCES.items():
        files = sorted((fetch_package(package) / folder).rglob("*.g722"))
        total = 0
        for path in files[:: max(1, len(files) // 60)]:
            clip = read_audio(path)
            clips.append(clip)
            total += len(clip)
            if total >= SECONDS_PER_SOURCE * SAMPLE_RATE:
                break
    return np.concatenate(clips)


def ms_per_second(fn, seconds: float, repeats: int = 3) -> float:
    fn()  # warm-up (numba compilation, caches)
    best = min(_timed(fn) for _ in range(repeats))
    return 1000.0 * best / seconds


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def quality(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return pesq(SAMPLE_RATE, x, y, "wb"), stoi(x, y, SAMPLE_RATE)


def main() -> None:
    x = load_speech()
    seconds = len(x) / SAMPLE_RATE
    lm = logmel(x)
    mel = logmel_to_mel(lm)
    mag = mel_to_magnitude(mel)
    frames = rtpghi(mag)
    lines = [f"Speech: {seconds:.1f} s (Asterisk it + fr prompts). One core. Times in ms per second of audio.", ""]

    lines += ["| stage | ms per s of audio |", "|---|---|"]
    stages = [
        ("log-mel analysis (STFT + mel + log)", lambda: logmel(x)),
        ("mel -> magnitude (mu, 8 iterations)", lambda: mel_to_magnitude(mel)),
        ("RTPGHI", lambda: rtpghi(mag)),
        ("offline PGHI", lambda: pghi(mag)),
        ("Griffin-Lim, 4 iterations", lambda: griffin_lim(frames, 4)),
        ("inverse STFT (overlap-add)", lambda: istft(frames)),
        ("receiver path without refinement (synthesize)", lambda: synthesize(lm)),
        ("receiver path with 4 Griffin-Lim iterations", lambda: synthesize(lm, griffin_lim_iters=4)),
    ]
    for name, fn in stages:
        lines.append(f"| {name} | {ms_per_second(fn, seconds):.1f} |")

    lines += ["", "Mel inversion solvers (then RTPGHI, no refinement):", "",
              "| solver | ms per s | magnitude error | PESQ-WB | STOI |", "|---|---|---|---|---|"]
    true_mag = np.abs(stft(x))
    for method in ("mu", "pinv", "spread", "nnls"):
        cost = ms_per_second(lambda m=method: mel_to_magnitude(mel, m), seconds, repeats=1)
        est = mel_to_magnitude(mel, method)
        err = np.linalg.norm(est - true_mag) / np.linalg.norm(true_mag)
        p, s = quality(x, istft(rtpghi(est), len(x)))
        lines.append(f"| {method} | {cost:.1f} | {err:.3f} | {p:.2f} | {s:.3f} |")

    lines += ["", "Round trip audio -> log-mel -> audio:", "", "| phase | PESQ-WB | STOI |", "|---|---|---|"]
    p, s = quality(x, istft(pghi(true_mag), len(x)))
    lines.append(f"| true magnitude, offline PGHI | {p:.2f} | {s:.3f} |")
    for iters in (0, 4, 8, 16):
        p, s = quality(x, synthesize(lm, len(x), iters))
        lines.append(f"| log-mel, RTPGHI + {iters} Griffin-Lim | {p:.2f} | {s:.3f} |")

    text = "\n".join(lines) + "\n"
    write_result("dsp.md", text)


if __name__ == "__main__":
    main()
