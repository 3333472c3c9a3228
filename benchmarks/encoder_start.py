"""Where the encoder's search starts: E as trained with G (model.safetensors) against its copy
tuned on the search's own first score (encoder.safetensors, `streamcodec train encoder`), on
clean development segments, without the search, with short searches (what a deadline leaves a slow
node) and with the default one; everything else as shipped.

    .venv/bin/python -m benchmarks.encoder_start --per-speaker 10   # writes benchmarks/results/encoder_start.md
    .venv/bin/python -m benchmarks.encoder_start --candidates runs/soup --out encoder_soup   # also other encoders

--per-speaker 10 takes 20 segments, of which 16 are not among the 10 of the quality benchmark
(speech_quality.py, --per-speaker 5), where the search's settings were chosen
(search_tuning.py): a check of the choice on speech it was not made on.
"""

import argparse
import copy
import time

import numpy as np

from benchmarks import write_result
from benchmarks.metrics import align, pesq_wb, stoi
from benchmarks.speech_quality import dev_segments
from streamcodec import threads
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.nets import runtime
from streamcodec.nets.assets import read_assets
from streamcodec.speech import compress, decompress, load_model
from streamcodec.speech.codec import DEFAULT_ITERS
from streamcodec.train.debian import cache_dir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-speaker", type=int, default=10, help="10 s segments per dev speaker")
    parser.add_argument("--model", default="speech-2k")
    parser.add_argument("--candidates", nargs="*", default=[], metavar="DIR",
                        help="copies of the model folder with another encoder.safetensors to score beside it")
    parser.add_argument("--out", default="encoder_start", help="result file name in benchmarks/results")
    args = parser.parse_args()
    threads.configure(2)
    shipped = load_model(args.model)
    trained = copy.copy(shipped)
    trained.encoder = runtime.encoder(read_assets(args.model).tensors)
    encoders = [("E tuned (encoder.safetensors)", shipped), ("E (model.safetensors)", trained)]
    for path in args.candidates:
        candidate = load_model(path)
        if candidate.model_id != shipped.model_id:
            raise SystemExit(f"{path} holds another model than {args.model}: only its encoder may differ")
        encoders.append((f"candidate {path}", candidate))
    segments = dev_segments(cache_dir() / "corpus", args.per_speaker)
    lines = [(f"{len(segments)} clean development segments of 10 s, model {args.model}, coded as shipped but for "
              "the encoder network, decoded by the model's receivers; PESQ-WB / STOI, and the mean of "
              "each segment's difference to the shipped encoder's at the same iterations (+- 2 standard errors)."),
             "", "| encoder | search iterations | PESQ-WB | STOI | PESQ-WB difference |", "|---|---|---|---|---|"]
    for iters in (DEFAULT_ITERS, 8, 4, 0):  # short searches: what a deadline leaves a slow node
        first = None
        for name, model in encoders:
            start, scores = time.time(), []
            for _, x in segments:
                y = align(x, decompress(compress(x, SAMPLE_RATE, iters=iters, model=model), model=shipped)[0])
                scores.append((pesq_wb(x, y), stoi(x, y)))
            s = np.array(scores)
            first = s[:, 0] if first is None else first
            d = s[:, 0] - first
            lines.append(f"| {name} | {iters} | {s[:, 0].mean():.3f} | {s[:, 1].mean():.4f} | "
                         f"{d.mean():+.3f} +- {2 * d.std(ddof=1) / np.sqrt(len(d)) if d.any() else 0:.3f} |")
            print(lines[-1], f"({time.time() - start:.0f} s)", flush=True)
    write_result(f"{args.out}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
