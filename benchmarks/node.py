"""The node side (issue 13): what an IoT node slower than this machine should set. One thread, live
style (each 1.024 s frame encoded alone as it completes, as `streamcodec send` does), on the
development set: per search-iteration setting, the time a frame takes (mean and worst), the
real-time factor, PESQ-WB and STOI (after magnitude-spectrogram alignment), and how many times
slower than this machine a node may be and still keep up (worst frame within 1.024 s).

    .venv/bin/python -m benchmarks.node        # writes benchmarks/results/node.md
"""

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import align, pesq_wb, stoi
from benchmarks.speech_quality import dev_segments
from streamcodec import threads
from streamcodec.dsp.params import BLOCK_SAMPLES
from streamcodec.speech import DEFAULT_ITERS, SpeechDecoder, SpeechEncoder, load_model
from streamcodec.train.debian import cache_dir

ITERS = tuple(sorted({0, 2, 4, 8, 16, DEFAULT_ITERS}))


def live(model, x: np.ndarray, iters: int) -> tuple[list[bytes], list[float]]:
    """Encode frame by frame; the time of each push that completed a frame."""
    enc = SpeechEncoder(model, iters=iters, dtx=False, start_time_us=0)
    packets, times = [], []
    for i in range(0, len(x), BLOCK_SAMPLES):
        start = time.perf_counter()
        out = enc.push(x[i : i + BLOCK_SAMPLES])
        if out:
            times.append(time.perf_counter() - start)
        packets += out
    return packets + enc.flush(), times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--per-speaker", type=int, default=2)
    args = parser.parse_args()
    threads.configure(1)
    model = load_model()
    segments = dev_segments(args.corpus, args.per_speaker)
    live(model, segments[0][1][:BLOCK_SAMPLES * 2], 16)  # warm-up
    rows = []
    for iters in ITERS:
        times, pesqs, stois = [], [], []
        for _, x in segments:
            packets, t = live(model, x, iters)
            times += t
            dec = SpeechDecoder(model)
            y = np.concatenate([dec.decode(p) for p in packets] + [dec.flush()])[: len(x)]
            y = align(x, y)
            pesqs.append(pesq_wb(x, y))
            stois.append(stoi(x, y))
        t = np.array(times)
        rows.append((iters, t.mean(), t.max(), np.mean(pesqs), np.mean(stois)))
        print(rows[-1], flush=True)
    lines = [f"One thread, {len(segments)} development segments of 10 s, each frame encoded as it completes.", "",
             "| search iterations | frame time mean / worst | real-time factor | PESQ-WB | STOI | "
             "a node may be this much slower |", "|---|---|---|---|---|---|"]
    lines += [f"| {it} | {mean * 1e3:.0f} / {worst * 1e3:.0f} ms | {mean / 1.024:.3f} | {p:.2f} | {s:.3f} | "
              f"{1.024 / worst:.1f}x |" for it, mean, worst, p, s in rows]
    write_result("node.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
