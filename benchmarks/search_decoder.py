"""Which generator the encoder's search goes through, and how its loss weighs loud bins (issue 14).

    .venv/bin/python -m benchmarks.search_decoder     # writes benchmarks/results/search_decoder.md

Receivers decode with the model's receiver's generator (train/decoder.py), G's copy tuned on the
packets the search sends. The search used to go through G itself, with the loss weighted by
exp(4 x): it found the indices that G decodes best, not those the receiver decodes best. Each row
codes the clean development segments of speech_quality.py with the shipped encoder but for the
generator searched through and the loudness weight of its clean frames' search (speech/codec.py's search_ways), and decodes
them with the generator named (a receiver without the receiver's generator decodes with G).
A second table gives what decides the search's generator frame by frame: how much the enhancer
changed each frame's log-mel (speech/codec.py's NOISY_FRAME), in the robustness benchmark's
conditions. `--models` adds rows for other model folders (say, speech-2k with a receiver's generator of a
next round, `streamcodec train decoder --start decoder`), each searched through and decoded by
its own receiver's generator at the shipped weight.
"""

import argparse
import copy
import time

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import all_metrics
from benchmarks.search_tuning import search_settings
from benchmarks.speech_quality import dev_segments
from benchmarks.speech_robustness import conditions
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import codec, compress, decompress, load_model
from streamcodec.train.debian import cache_dir


def with_decoder(model, net):
    """The model with `net` as the generator its search goes through and its receivers decode with."""
    m = copy.copy(model)
    m.decoder = net
    return m


def enhancer_changes(model, segments) -> list[str]:
    """Table rows: percentiles of the enhancer's mean change per frame, by condition."""
    seen = []

    def record(m, x, denoise, context=0):
        clean, noisy = enhance(m, x, denoise, context)
        seen.append(codec.enhancer_change(x[..., context:], clean[..., context:]))
        return clean, noisy

    enhance, codec.enhance = codec.enhance, record
    rows = []
    try:
        for name, degrade in conditions(segments, cache_dir() / "noise").items():
            seen.clear()
            for i, (_, x) in enumerate(segments):
                compress(degrade(i, x), SAMPLE_RATE, iters=0, model=model)
            d = np.concatenate(seen)
            rows.append(f"| {name} | {len(d)} | " + " | ".join(f"{np.percentile(d, q):.4f}" for q in (10, 50, 90))
                        + f" | {np.mean(d > codec.NOISY_FRAME):.2f} |")
            print(rows[-1], flush=True)
    finally:
        codec.enhance = enhance
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-speaker", type=int, default=5, help="10 s segments per dev speaker")
    parser.add_argument("--weights", type=float, nargs="+", default=[0, 1, 1.5, 2, 3, 4, 6])
    parser.add_argument("--models", nargs="*", default=[], help="model folders compared end to end")
    args = parser.parse_args()
    model = load_model("speech-2k")
    G, receiver = model.generator, model.decoder
    segments = dev_segments(cache_dir() / "corpus", args.per_speaker)
    rows = [("G", 4.0, "receiver's generator"), ("receiver's generator", codec.LOUDNESS_WEIGHT, "G")]
    rows += [("receiver's generator", w, "receiver's generator") for w in args.weights]
    nets = {"G": G, "receiver's generator": receiver}
    for folder in args.models:
        nets[f"{folder}'s receiver's generator"] = load_model(folder).decoder
        rows.append((f"{folder}'s receiver's generator", codec.LOUDNESS_WEIGHT, f"{folder}'s receiver's generator"))
    lines = [(f"{len(segments)} clean development segments of 10 s (speech_quality.py's), 16 search iterations, "
              "model speech-2k; scores against the original, kbit/s on the wire (the whole file)."), "",
             "| search through | loudness weight | decoded by | kbit/s | PESQ-WB | STOI | ViSQOL | DNSMOS | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for searched, w, decoded in rows:
        start, scores, kbps = time.time(), [], []
        with search_settings(LOUDNESS_WEIGHT=w):
            for _, x in segments:
                data = compress(x, SAMPLE_RATE, model=with_decoder(model, nets[searched]))
                y = decompress(data, model=with_decoder(model, nets[decoded]))[0]
                scores.append(all_metrics(x, y))
                kbps.append(8 * len(data) / (len(x) / SAMPLE_RATE) / 1000)
        mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        lines.append(f"| {searched} | {w:g} | {decoded} | {np.mean(kbps):.2f} | {mean['pesq_wb']:.2f} | "
                     f"{mean['stoi']:.3f} | {mean['visqol']:.2f} | {mean['dnsmos']:.2f} | {time.time() - start:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", (f"The enhancer's mean change of a frame's log-mel ([-1, 1] units), in the conditions of "
              f"speech_robustness.py on the same segments; frames above {codec.NOISY_FRAME:g} are searched through G:"), "",
              "| condition | frames | 10th percentile | median | 90th percentile | share searched through G |",
              "|---|---|---|---|---|---|"]
    lines += enhancer_changes(model, segments)
    write_result("search_decoder.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
