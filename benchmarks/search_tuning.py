"""Tune the encoder's latent search end to end: the clean development segments of
speech_quality.py coded by the speech encoder as shipped (enhancer, E or its tuned copy, the
routed search, the bit budget) for a grid of Adam step sizes (speech/codec.py's SEARCH_LR) and
ADMM penalty weights (SEARCH_MU), decoded by the model's receivers, scored by PESQ-WB and STOI.
A second table: how often the search scores its quantised iterate
(SEARCH_EVAL_EVERY), with the encoder's time at 1 thread.

    .venv/bin/python -m benchmarks.search_tuning     # writes benchmarks/results/search_tuning.md

The grid picks the shipped values from a handful of nearby ones on the same segments the quality
benchmark reports, so a winner's lead of a few hundredths is within what another set of
segments would move (compare --per-speaker 10).
"""

import argparse
import contextlib
import itertools
import time

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import align, pesq_wb, stoi
from benchmarks.speech_quality import dev_segments
from streamcodec import threads
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import codec, compress, decompress, load_model
from streamcodec.train.debian import cache_dir


@contextlib.contextmanager
def search_settings(**values):
    """speech/codec.py's search settings (SEARCH_*, LOUDNESS_WEIGHT) replaced for the block."""
    before = {k: getattr(codec, k) for k in values}
    for k, v in values.items():
        setattr(codec, k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            setattr(codec, k, v)


def code_segments(model, segments, iters: int = codec.DEFAULT_ITERS) -> dict:
    """Mean PESQ-WB and STOI of the segments coded as shipped, and the encoder's seconds."""
    scores, spent = [], 0.0
    for _, x in segments:
        start = time.perf_counter()
        data = compress(x, SAMPLE_RATE, iters=iters, model=model)
        spent += time.perf_counter() - start
        y = align(x, decompress(data, model=model)[0])
        scores.append((pesq_wb(x, y), stoi(x, y)))
    return {"pesq": np.mean([s[0] for s in scores]), "stoi": np.mean([s[1] for s in scores]), "seconds": spent}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-speaker", type=int, default=5, help="10 s segments per dev speaker")
    parser.add_argument("--model", default="speech-2k")
    args = parser.parse_args()
    threads.configure(2)
    model = load_model(args.model)
    segments = dev_segments(cache_dir() / "corpus", args.per_speaker)
    shipped = (codec.SEARCH_LR, codec.SEARCH_MU, codec.SEARCH_EVAL_EVERY)
    lines = [(f"{len(segments)} clean development segments of 10 s (speech_quality.py's), model {args.model}, "
              f"{codec.DEFAULT_ITERS} iterations, coded by the shipped encoder, decoded by its receivers, 2 threads."), "",
             "| lr | mu | PESQ-WB | STOI |", "|---|---|---|---|"]
    for lr, mu in itertools.product((0.05, 0.1, 0.15, 0.2), (0.0, 0.01, 0.03)):
        with search_settings(SEARCH_LR=lr, SEARCH_MU=mu):
            r = code_segments(model, segments)
        mark = " (shipped)" if (lr, mu) == shipped[:2] else ""
        lines.append(f"| {lr}{mark} | {mu} | {r['pesq']:.3f} | {r['stoi']:.4f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Encoder only (no search): PESQ-WB {code_segments(model, segments, 0)['pesq']:.3f}.", "",
              "Scoring interval, 1 thread:", "", "| score every | PESQ-WB | STOI | encoder seconds |", "|---|---|---|---|"]
    threads.configure(1)
    for every in (1, 2, 4, 8):
        with search_settings(SEARCH_EVAL_EVERY=every):
            r = code_segments(model, segments)
        mark = " (shipped)" if every == shipped[2] else ""
        lines.append(f"| {every}{mark} | {r['pesq']:.3f} | {r['stoi']:.4f} | {r['seconds']:.1f} |")
        print(lines[-1], flush=True)
    write_result("search_tuning.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
