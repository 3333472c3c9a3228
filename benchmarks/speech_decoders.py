"""Receivers compared on the same packets (issue 14): decoders that share a model id (G, or G's
copy tuned for receivers by train/decoder.py, shipped beside a copy of the model) and post-filter
amounts, on clean development speech and the field conditions of speech_robustness.py.

    .venv/bin/python -m benchmarks.speech_decoders --postfilter 0 0.1 0.2 --out speech_decoders_postfilter

A receiver that decodes with G is a copy of the model without the tuned network:

    cp -r models/speech-2k runs/speech-2k-g && rm runs/speech-2k-g/decoder.*
    .venv/bin/python -m benchmarks.speech_decoders --models runs/speech-2k-g speech-2k --postfilter 0.2 0.3

A receiver with a large decoder (train/receiver.py) is a copy of the model with it exported in:

    cp -r models/speech-2k runs/model-a && streamcodec train export --kind receiver --run runs/receiver --out runs/model-a
    .venv/bin/python -m benchmarks.speech_decoders --models speech-2k runs/model-a --conditions clean --out speech_receiver_ab

(speech_decoders.md was made before speech-2k shipped the network, as `--models speech-2k
runs/decoder-export`: its "speech-2k" rows are G decoding, its "decoder-export" rows today's
speech-2k.)

Each condition's input is coded once, by the first model's encoder as shipped (enhancer, 16
search iterations); every decoder decodes those very packets, so only the receiver differs.
Scores as in speech_robustness.py: PESQ-WB, STOI and ViSQOL against the clean original after
aligning magnitude spectrograms, DNSMOS of the output alone.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import align, dnsmos, pesq_wb, stoi, visqol
from benchmarks.speech_quality import dev_segments
from benchmarks.speech_robustness import conditions
from streamcodec import threads
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import compress, decompress, load_model
from streamcodec.train.debian import cache_dir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["speech-2k"], help="models with one id: the first encodes")
    parser.add_argument("--postfilter", nargs="+", type=float, default=[0.2])
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--noise", type=Path, default=cache_dir() / "noise")
    parser.add_argument("--per-speaker", type=int, default=5)
    parser.add_argument("--conditions", nargs="*", default=None, help="names from speech_robustness.py (default all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="speech_decoders")
    args = parser.parse_args()
    threads.configure(args.threads)
    models = [load_model(m) for m in args.models]
    if len({m.model_id for m in models}) != 1:
        raise SystemExit("the models must share one model id (the same encoder and code)")
    segments = dev_segments(args.corpus, args.per_speaker)
    conds = conditions(segments, args.noise)
    names = list(conds) if args.conditions is None else args.conditions
    rows = []
    for cname in names:
        start = time.time()
        packets = [compress(conds[cname](i, x).astype(np.float32), SAMPLE_RATE, model=models[0])
                   for i, (_, x) in enumerate(segments)]
        kbps = np.mean([8 * len(p) / (len(x) / SAMPLE_RATE) / 1000 for p, (_, x) in zip(packets, segments)])
        for path, model in zip(args.models, models):
            for amount in args.postfilter:
                scores = []
                for p, (_, x) in zip(packets, segments):
                    y = align(x, decompress(p, model=model, postfilter=amount)[0])
                    scores.append((pesq_wb(x, y), stoi(x, y), visqol(x, y), dnsmos(y)))
                s = np.mean(scores, axis=0)
                rows.append((cname, f"{Path(path).name}, post-filter {amount}", kbps, *s))
                print(" | ".join(map(str, rows[-1])), f"({time.time() - start:.0f} s)", flush=True)
    lines = [f"Development set: {len(segments)} segments of 10 s of held-out speakers "
             f"({', '.join(sorted({s for s, _ in segments}))}); model id {models[0].model_id.hex()}, "
             f"coded once per condition by {args.models[0]}'s encoder; each row a receiver.", "",
             "| condition | decoder | kbit/s | PESQ-WB | STOI | ViSQOL | DNSMOS |", "|---|---|---|---|---|---|---|"]
    for c, d, k, p, s, v, n in rows:
        lines.append(f"| {c} | {d} | {k:.2f} | {p:.2f} | {s:.3f} | {v:.2f} | {n:.2f} |")
    write_result(f"{args.out}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
