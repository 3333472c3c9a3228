"""What the decoder's phase refinement costs and buys: decoder real-time factor (1 thread, as a
receiver runs each decoder thread) and quality against Griffin-Lim iterations, on the same packets
(development segments coded at the default settings). A receiver that falls behind gives up the
refinement before it drops frames (stream/receiver.py); this table says what that costs.

    .venv/bin/python -m benchmarks.decoder      # writes benchmarks/results/decoder.md
"""

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import align, pesq_wb, stoi
from benchmarks.speech_quality import dev_segments
from streamcodec import threads
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import SpeechDecoder, SpeechEncoder, load_model
from streamcodec.train.debian import cache_dir

GRID = (0, 2, 4, 8, 16)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--per-speaker", type=int, default=3)
    parser.add_argument("--model", default="speech-2k")
    args = parser.parse_args()
    threads.configure(1)
    model = load_model(args.model)
    segments = [x for _, x in dev_segments(args.corpus, args.per_speaker)]
    coded = []
    for x in segments:
        enc = SpeechEncoder(model, dtx=False, start_time_us=0)
        coded.append(enc.push(x) + enc.flush())
    seconds = sum(len(x) for x in segments) / SAMPLE_RATE
    for iters in (0, 1):  # warm-up: numba's compiled kernels load, first-call costs are paid
        dec = SpeechDecoder(model, griffin_lim_iters=iters)
        [dec.decode(p) for p in coded[0][:3]]
    lines = [f"{len(segments)} dev segments, {seconds:.0f} s, model {args.model}, default encoding; decoder at 1 thread.", "",
             "| Griffin-Lim iterations | decoder RTF | ms per frame | PESQ-WB | STOI |", "|---|---|---|---|---|"]
    for iters in GRID:
        spent, pesqs, stois, frames = 0.0, [], [], 0
        for x, packets in zip(segments, coded):
            dec = SpeechDecoder(model, griffin_lim_iters=iters)
            start = time.perf_counter()
            y = np.concatenate([dec.decode(p) for p in packets] + [dec.flush()])
            spent += time.perf_counter() - start
            frames += len(packets)
            y = align(x, y[: len(x)])
            pesqs.append(pesq_wb(x, y))
            stois.append(stoi(x, y))
        lines.append(f"| {iters} | {spent / seconds:.3f} | {1000 * spent / frames:.1f} | {np.mean(pesqs):.2f} | "
                     f"{np.mean(stois):.3f} |")
        print(lines[-1], flush=True)
    write_result("decoder.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
