"""Where ViSQOL in loud unseen noise goes (issue 14): the same outputs scored full band and
low-passed to 4 kHz. Codec2 3200 codes at 8 kHz, so it never reproduces noise above 4 kHz, where
speech has little energy; streamcodec codes the whole band, noise included where its enhancer
leaves it. If low-passing streamcodec's output lifts its ViSQOL past Codec2's, the gap is the
upper band's noise, not the speech.

    .venv/bin/python -m benchmarks.visqol_band --conditions clean "held-out real noise, 5 dB SNR"

Same segments (16 development segments by default) and conditions as speech_robustness.py.
"""

import argparse

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import align, visqol
from benchmarks.speech_quality import dev_segments
from benchmarks.speech_robustness import conditions, systems
from streamcodec import threads
from streamcodec.train.debian import cache_dir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="speech-2k")
    parser.add_argument("--conditions", nargs="+", default=["clean", "held-out real noise, 5 dB SNR"])
    parser.add_argument("--per-speaker", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="visqol_band")
    args = parser.parse_args()
    threads.configure(args.threads)
    segments = dev_segments(cache_dir() / "corpus", args.per_speaker)
    conds = conditions(segments, cache_dir() / "noise")
    low_pass = conds["8 kHz input"]  # down to 8 kHz and back, as a narrowband codec hears it
    ours, codec2 = (run for name, run in systems([args.model]).items() if name.startswith(("streamcodec", "Codec2")))
    columns = ("input", "input, 4 kHz", "streamcodec", "streamcodec, 4 kHz", "Codec2 3200")
    lines = [(f"ViSQOL (speech mode) against the clean original, {len(segments)} development segments of 10 s; "
              "\"4 kHz\": the same output low-passed (to 8 kHz and back)."), "",
             f"| condition | {' | '.join(columns)} |", "|---|" + "---|" * len(columns)]
    for cname in args.conditions:
        scores = []
        for i, (_, x) in enumerate(segments):
            y = conds[cname](i, x).astype(np.float32)
            out = align(x, ours(y)[0])
            scores.append([visqol(x, v) for v in (y, low_pass(i, y), out, low_pass(i, out), align(x, codec2(y)[0]))])
            print(cname, i, np.round(scores[-1], 2), flush=True)
        lines.append(f"| {cname} | " + " | ".join(f"{v:.2f}" for v in np.mean(scores, axis=0)) + " |")
    write_result(f"{args.out}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
