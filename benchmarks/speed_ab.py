"""Encoder speed of this checkout against an earlier commit, on the same machine at the same time.

    .venv/bin/python -m benchmarks.speed_ab --baseline 12fce3f --iters 16

This machine's speed drifts by several per cent from one run to the next (docs/benchmarks.md, speech speed), so a
speed-up of a tenth cannot be read off two speech_rtf.py runs made at different times. Here both
sides encode speech_rtf.py's segments (4 development segments of 10 s, whole segments pushed,
2 threads) in turns, each round in a fresh subprocess per side, the order alternating; the table
gives each side's median, spread and the paired ratio per round. Each side runs its own code and
its own speech-2k (the earlier commit from a temporary git worktree, as speech_gain.py does) at
its default search iterations; `--iters` adds this checkout at that many iterations, so a cheaper
iteration can be told from a changed default.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import write_result
from benchmarks.checkouts import REPO, head_label, run_in, short_commit, worktree
from benchmarks.speech_quality import dev_segments
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.train.debian import cache_dir

# Run inside the checkout under test: encode every segment live-style (push, then flush), as
# speech_rtf.py does; print the encoder's real-time factor and the iterations it searched.
TIMER = """
import os, sys, time
import streamcodec
assert os.path.realpath(streamcodec.__file__).startswith(os.path.realpath(os.getcwd())), streamcodec.__file__
from streamcodec.threads import configure
configure(2)
import numpy as np
from streamcodec.speech import SpeechEncoder, load_model
from streamcodec.speech.codec import DEFAULT_ITERS
segments_file, model_dir, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]) or DEFAULT_ITERS
model = load_model(model_dir)
segments = np.load(segments_file)["audio"]
def encode(x):
    enc = SpeechEncoder(model, iters=iters, dtx=False, start_time_us=0)
    start = time.perf_counter()
    enc.push(x) + enc.flush()
    return time.perf_counter() - start
encode(segments[0])  # warm-up
print(iters, sum(encode(x) for x in segments) / (segments.size / 16000))
"""


def time_side(checkout: Path, segments_file: Path, iters: int) -> tuple[int, float]:
    used, rtf = run_in(checkout, TIMER, segments_file, checkout / "models" / "speech-2k", iters).split()
    return int(used), float(rtf)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", required=True, help="the earlier commit")
    parser.add_argument("--iters", type=int, default=0, help="also time this checkout at this many iterations")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--out", default="speed_ab")
    args = parser.parse_args()
    audio = np.stack([x for _, x in dev_segments(args.corpus, 2)])
    head, base = head_label(), short_commit(args.baseline)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "segments.npz", audio=audio)
        with worktree(base) as tree:
            sides = [(f"{base} (baseline)", tree, 0), (f"{head} (this checkout)", REPO, 0)]
            if args.iters:
                sides.append((f"{head} (this checkout), {args.iters} iterations", REPO, args.iters))
            rtf = {name: [] for name, _, _ in sides}
            used = {}
            for r in range(args.rounds):
                for name, checkout, iters in (sides if r % 2 == 0 else sides[::-1]):
                    used[name], t = time_side(checkout, tmp / "segments.npz", iters)
                    rtf[name].append(t)
                    print(f"round {r + 1}: {name}: {t:.3f}", flush=True)
    first = np.array(rtf[sides[0][0]])
    lines = [f"Encoder real-time factor, 2 threads, speech_rtf.py's {len(audio)} development segments "
             f"({audio.size / SAMPLE_RATE:.0f} s) pushed whole; {args.rounds} rounds, each side in a fresh process per round, "
             f"the order alternating; ratio: each round's RTF over the baseline's in the same round.", "",
             "| code | search iterations | RTF median | min - max | ratio to the baseline (median, min - max) |",
             "|---|---|---|---|---|"]
    for name, _, _ in sides:
        x = np.array(rtf[name])
        ratio = x / first
        lines.append(f"| {name} | {used[name]} | {np.median(x):.3f} | {x.min():.3f} - {x.max():.3f} | "
                     f"{np.median(ratio):.3f} ({ratio.min():.3f} - {ratio.max():.3f}) |")
    write_result(f"{args.out}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
