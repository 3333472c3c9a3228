"""What the speech codec gained since an earlier commit, on more of the development set than the
quality table's 10 segments, so that a gain of a few hundredths can be told from the spread.

    .venv/bin/python -m benchmarks.speech_gain --baseline 0474f99 --per-speaker 30

Both sides code the same segments, each with its own code and its own speech-2k at default
settings: the earlier commit is checked out into a temporary git worktree and run there in a
subprocess (from its own models/ folder: an editable install would otherwise hand it today's
model), this checkout likewise. Today's metrics score both outputs (benchmarks/metrics.py: STOI
after aligning magnitude spectrograms), and the table gives each mean and the paired difference
with its 95 % interval (speech_robustness.lead_table). Many segments, because the search is
chaotic: the same code and model, run inside a benchmark process and in a subprocess, were seen
to send slightly different packets (floating-point rounding that differs between the two), which
moves single segments' scores.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import write_result
from benchmarks.checkouts import REPO, head_label, run_in, short_commit, worktree
from benchmarks.metrics import all_metrics
from benchmarks.speech_quality import SEGMENT_SECONDS, dev_segments
from benchmarks.speech_robustness import lead_table
from streamcodec.train.debian import cache_dir

# Run inside the checkout under test (its streamcodec first on the path): code and decode every
# segment with that checkout's defaults; keep the decoded audio and the file's size.
CODER = """
import sys
import numpy as np
from streamcodec.speech import compress, decompress, load_model
segments_file, out_file, model_dir = sys.argv[1:4]
model = load_model(model_dir)
segments = np.load(segments_file)["audio"]
decoded, sizes = {}, []
for i, x in enumerate(segments):
    data = compress(x, 16000, model=model)  # dev segments are 16 kHz
    decoded[f"decoded{i}"] = decompress(data, model=model)[0]  # untrimmed, as speech_quality.py scores it
    sizes.append(len(data))
np.savez(out_file, sizes=np.array(sizes), model_id=model.model_id.hex(), **decoded)
"""


def code_with(checkout: Path, segments_file: Path, out_file: Path) -> dict:
    run_in(checkout, CODER, segments_file, out_file, checkout / "models" / "speech-2k")
    return dict(np.load(out_file))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", required=True, help="the earlier commit")
    parser.add_argument("--per-speaker", type=int, default=30, help="10 s segments per dev speaker")
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--out", default="speech_gain")
    args = parser.parse_args()
    segments = dev_segments(args.corpus, args.per_speaker)
    audio = np.stack([x for _, x in segments])
    head = head_label()
    base = short_commit(args.baseline)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "segments.npz", audio=audio)
        with worktree(base) as tree:
            sides = {f"{base} (baseline)": code_with(tree, tmp / "segments.npz", tmp / "base.npz"),
                     f"{head} (this checkout)": code_with(REPO, tmp / "segments.npz", tmp / "head.npz")}
    per_segment, rows = {}, []
    for name, side in sides.items():
        scores = [all_metrics(x, side[f"decoded{i}"]) for i, x in enumerate(audio)]
        per_segment["clean", name] = np.array([[s["pesq_wb"], s["stoi"], s["visqol"], s["dnsmos"]] for s in scores])
        kbps = 8 * side["sizes"].sum() / (len(audio) * SEGMENT_SECONDS) / 1000
        means = per_segment["clean", name].mean(axis=0)
        rows.append(f"| {name} | {side['model_id']} | {kbps:.2f} | {means[0]:.3f} | {means[1]:.4f} | "
                    f"{means[2]:.2f} | {means[3]:.2f} |")
        print(rows[-1], flush=True)
    speakers = ", ".join(sorted({s for s, _ in segments}))
    lines = [f"Development set: {len(segments)} segments of 10 s ({len(segments) * SEGMENT_SECONDS / 60:.0f} min, "
             f"{args.per_speaker} evenly spaced per held-out speaker: {speakers}), clean speech, each side's "
             f"speech-2k at its defaults, coded and decoded by its own code; scored by this checkout's metrics; "
             f"kbit/s: whole files.", "",
             "| code | model id | kbit/s | PESQ-WB | STOI | ViSQOL | DNSMOS |", "|---|---|---|---|---|---|---|",
             *rows, "", *lead_table(per_segment, [list(sides)[1]], [list(sides)[0]], "This checkout against the baseline",
                        digits=(3, 4, 2, 2))]
    write_result(f"{args.out}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
