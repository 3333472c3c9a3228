"""Rate and quality of streamcodec against the codecs a user would pick instead, on the
development set (real speech of held-out speakers, from the corpus builder).

    .venv/bin/python -m benchmarks.speech_quality        # writes benchmarks/results/speech_quality.{md,png}

Each 10 s segment is coded on its own; decoded audio is aligned to the reference before the
metrics (benchmarks/metrics.py). Bitrates are what each codec actually spent: the whole file
for streamcodec (every byte: header, records, packet headers), packet bytes for Codec2 and Opus,
the file for Speex.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks import RESULTS, write_result
from benchmarks import baselines
from benchmarks.metrics import all_metrics
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import compress, decompress, load_model, vocode
from streamcodec.speech.codec import DEFAULT_ITERS, DEFAULT_POSTFILTER
from streamcodec.train.debian import cache_dir

SEGMENT_SECONDS = 10.0


def dev_segments(corpus: Path, per_speaker: int) -> list[tuple[str, np.ndarray]]:
    """`per_speaker` evenly spaced 10 s segments of every development speaker."""
    out = []
    seg = int(SEGMENT_SECONDS * SAMPLE_RATE)
    for wav in sorted((corpus / "dev").glob("*.wav")):
        audio, rate = sf.read(wav, dtype="float32")
        assert rate == SAMPLE_RATE
        starts = np.linspace(0, len(audio) - seg, per_speaker).astype(int)
        out += [(wav.stem, audio[s : s + seg]) for s in starts]
    return out


def streamcodec_system(model, iters: int, postfilter: float):
    def run(x):
        data = compress(x, SAMPLE_RATE, iters=iters, model=model)
        return decompress(data, model=model, postfilter=postfilter)[0], 8 * len(data) * SAMPLE_RATE / len(x)

    return run


def systems(model, postfilter: float = DEFAULT_POSTFILTER) -> dict:
    return {
        "mel128 + PGHI ceiling (no compression)": lambda x: (vocode(x, SAMPLE_RATE)[0], float("nan")),
        "streamcodec, encoder only": streamcodec_system(model, 0, postfilter),
        f"streamcodec, search ({DEFAULT_ITERS} iterations)": streamcodec_system(model, DEFAULT_ITERS, postfilter),
        f"streamcodec, search ({DEFAULT_ITERS} iterations), no post-filter": streamcodec_system(model, DEFAULT_ITERS, 0.0),
        "Codec2 3200": lambda x: baselines.codec2(x, 3200),
        "Codec2 2400": lambda x: baselines.codec2(x, 2400),
        "Codec2 1200": lambda x: baselines.codec2(x, 1200),
        "Codec2 700C": lambda x: baselines.codec2(x, 700),
        "Opus 6 kbps (wideband, VoIP)": lambda x: baselines.opus(x, 6000),
        "Opus 9 kbps (wideband, VoIP)": lambda x: baselines.opus(x, 9000),
        "Speex wideband, quality 0": lambda x: baselines.speex(x, 0),
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("pesq_wb", "PESQ-WB"), ("stoi", "STOI"), ("visqol", "ViSQOL (speech)"), ("dnsmos", "DNSMOS overall")]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    for ax, (key, label) in zip(axes, metrics):
        for r in rows:
            if np.isnan(r["kbps"]):
                ax.axhline(r[key], color="grey", ls="--", lw=1, label=r["name"])
                continue
            marker = "*" if r["name"].startswith("streamcodec") else "o"
            ax.scatter(r["kbps"], r[key], marker=marker, s=120 if marker == "*" else 40, label=r["name"])
        ax.set_xlabel("kbit/s")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--per-speaker", type=int, default=10, help="10 s segments per dev speaker")
    parser.add_argument("--model", default="speech-2k")
    parser.add_argument("--postfilter", type=float, default=DEFAULT_POSTFILTER, help="the decoder's post-filter")
    parser.add_argument("--out", default="speech_quality")
    args = parser.parse_args()
    model = load_model(args.model)
    segments = dev_segments(args.corpus, args.per_speaker)
    minutes = len(segments) * SEGMENT_SECONDS / 60
    print(f"{len(segments)} segments, {minutes:.1f} min of dev speech, model {args.model} ({model.model_id.hex()})")
    rows = []
    for name, run in systems(model, args.postfilter).items():
        start = time.time()
        scores, kbps = [], []
        for _, x in segments:
            y, bps = run(x)
            kbps.append(bps)
            scores.append(all_metrics(x, y))
        row = {"name": name, "kbps": float(np.mean(kbps)) / 1000}  # the systems report bit/s
        row.update({k: float(np.mean([s[k] for s in scores])) for k in scores[0]})
        rows.append(row)
        print(f"{name}: {row} ({time.time() - start:.0f} s)", flush=True)
    lines = [f"Development set: {minutes:.1f} min of real speech of held-out speakers "
             f"({', '.join(sorted({s for s, _ in segments}))}), {len(segments)} segments of 10 s. "
             f"Model {args.model} ({model.model_id.hex()}), decoder post-filter {args.postfilter}.", "",
             "| system | kbit/s | PESQ-WB | STOI | ViSQOL | DNSMOS |", "|---|---|---|---|---|---|"]
    for r in rows:
        rate = "-" if np.isnan(r["kbps"]) else f"{r['kbps']:.2f}"
        lines.append(f"| {r['name']} | {rate} | {r['pesq_wb']:.2f} | {r['stoi']:.3f} | {r['visqol']:.2f} | "
                     f"{r['dnsmos']:.2f} |")
    text = "\n".join(lines) + "\n"
    write_result(f"{args.out}.md", text)
    plot(rows, RESULTS / f"{args.out}.png")


if __name__ == "__main__":
    main()
