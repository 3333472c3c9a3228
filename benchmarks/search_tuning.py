"""Tune the latent search: the final search loss (loudness-weighted log-mel MSE, the speech
encoder's F) of 16 ADMM iterations for a grid of Adam step sizes (lr) and penalty weights (mu), on
development-set frames, with the shipped model. Also reports
how many level indices the search changes from the quantised encoder output (how far the
searched latents are from the ones stage 2 fine-tunes G on), and, through the speech encoder as
shipped (level normalisation, bit budget), how often the search should score its quantised
iterate (`SEARCH_EVAL_EVERY`): search loss, PESQ-WB and encoder time at 1 thread.

    .venv/bin/python -m benchmarks.search_tuning     # writes benchmarks/results/search_tuning.md
"""

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import align, pesq_wb
from benchmarks.speech_quality import dev_segments
from benchmarks.speech_rtf import decode, frame_loss
from streamcodec import threads
from streamcodec.core.quantizer import quantize
from streamcodec.core.search import GeneratorObjective, admm_search, loudness_weighted_mse
from streamcodec.dsp import logmel
from streamcodec.speech import SpeechEncoder, codec, load_model
from streamcodec.train.debian import cache_dir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--model", default="speech-2k")
    parser.add_argument("--iters", type=int, default=16)
    args = parser.parse_args()
    threads.configure(2)
    model = load_model(args.model)
    blocks = []
    segments = [x for _, x in dev_segments(args.corpus, 2)]
    for x in segments:
        mel = logmel(np.concatenate([x, np.zeros(-len(x) % 16384, np.float32)]))
        blocks.append(mel.reshape(-1, 128, 128).transpose(0, 2, 1))
    x = np.ascontiguousarray(np.concatenate(blocks), np.float32)
    z0 = model.encoder(x)
    start_idx = quantize(z0, model.levels)
    lines = [f"{len(x)} development frames, {args.iters} iterations.", "",
             "| lr | mu | search loss (encoder only -> searched) | indices changed |", "|---|---|---|---|"]
    for lr, mu in itertools.product((0.03, 0.1, 0.2), (0.0, 0.01, 0.1)):
        r = admm_search(GeneratorObjective(model.generator, x, loudness_weighted_mse), z0, model.levels,
                        iters=args.iters, lr=lr, mu=mu)
        changed = float(np.mean(r.indices != start_idx))
        lines.append(f"| {lr} | {mu} | {r.initial_loss.mean():.5f} -> {r.loss.mean():.5f} | {changed:.2f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Scoring interval, speech encoder as shipped, {args.iters} iterations, "
              f"{sum(len(x) for x in segments) / 16000:.0f} s of development speech, 1 thread:", "",
              "| score every | search loss | PESQ-WB | encoder seconds |", "|---|---|---|---|"]
    threads.configure(1)
    shipped = codec.SEARCH_EVAL_EVERY
    for every in (1, 2, 4, 8):
        codec.SEARCH_EVAL_EVERY = every
        losses, pesqs, spent = [], [], 0.0
        for x in segments:
            enc = SpeechEncoder(model, iters=args.iters, dtx=False, start_time_us=0)
            start = time.perf_counter()
            packets = enc.push(x) + enc.flush()
            spent += time.perf_counter() - start
            losses.append(frame_loss(model, packets, x))
            pesqs.append(pesq_wb(x, align(x, decode(model, packets)[0][: len(x)])))
        lines.append(f"| {every}{' (shipped)' if every == shipped else ''} | {np.mean(losses):.5f} | "
                     f"{np.mean(pesqs):.3f} | {spent:.1f} |")
        print(lines[-1], flush=True)
    codec.SEARCH_EVAL_EVERY = shipped
    write_result("search_tuning.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
