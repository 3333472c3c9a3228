"""What a real microphone delivers (issue 14): quiet, hot and clipped, noisy (noise types the
model never saw in training among them), 8 kHz and reverberant input, for streamcodec models,
Codec2 3200 and Opus 6k, on the development set.

    .venv/bin/python -m benchmarks.speech_robustness --models speech-2k [runs/field-export ...]
    .venv/bin/python -m benchmarks.speech_robustness --no-baselines --models speech-2k CANDIDATE \
        --conditions clean noise --out NAME      # an A/B: the candidate against the shipped model

Every system codes the degraded input; PESQ-WB, STOI and ViSQOL (speech mode) score the output
against the clean original, after aligning magnitude spectrograms (benchmarks/metrics.py); DNSMOS
scores the output alone, and "noisy input" rows give the DNSMOS of the degraded input itself (the
bar for "not worse than the input"). The codec runs as shipped, enhancer included. A second table
gives each streamcodec model's lead over each baseline, segment by segment (the same degraded
input for both), with its 95 % interval: a lead smaller than its interval is a tie on this set
(with --no-baselines and several models: each model against the first).
Noise: white (synthetic), babble (four other development segments at once) and the held-out real
recordings of `python -m streamcodec.train.noise` (test split).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from benchmarks import RESULTS, baselines, write_result
from benchmarks.metrics import align, dnsmos, pesq_wb, stoi, visqol
from benchmarks.speech_quality import dev_segments
from streamcodec import threads
from streamcodec.dsp.audio import resample
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import compress, decompress, load_model
from streamcodec.train.debian import cache_dir

INPUT = "(degraded input itself)"  # scored by DNSMOS only: the bar for "not worse than the input"


def _rms(x):
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def _mix(x, noise, snr_db):
    noise = noise[: len(x)]
    return (x + noise * _rms(x) / _rms(noise) * 10 ** (-snr_db / 20)).astype(np.float32)


def conditions(segments, noise_dir: Path, seed: int = 0) -> dict:
    """name -> function(clean segment index, clean audio) -> degraded audio."""
    rng = np.random.default_rng(seed)
    real = sf.read(noise_dir / "test" / "frozen-bubble-data.wav", dtype="float32")[0]
    rir = rng.standard_normal(int(0.6 * SAMPLE_RATE)) * np.exp(-6.9 * np.arange(int(0.6 * SAMPLE_RATE)) / (0.5 * SAMPLE_RATE))
    rir[0] = 8.0  # direct path above the tail (RT60 0.5 s)

    def babble(i, x):
        others = [s for j, (_, s) in enumerate(segments) if j != i][:4]
        return np.sum([o / _rms(o) for o in others], axis=0)

    def noise_at(i, n):
        start = (i * 7919 * SAMPLE_RATE // 10) % (len(real) - n)
        return real[start : start + n]

    return {
        "clean": lambda i, x: x,
        "quiet (-40 dBFS peak)": lambda i, x: x / np.abs(x).max() * 10 ** (-40 / 20),
        "hot: x8, clipped": lambda i, x: np.clip(x * 8, -1, 1),
        "white noise, 20 dB SNR": lambda i, x: _mix(x, rng.standard_normal(len(x)), 20),
        "babble, 10 dB SNR": lambda i, x: _mix(x, babble(i, x), 10),
        "held-out real noise, 10 dB SNR": lambda i, x: _mix(x, noise_at(i, len(x)), 10),
        "held-out real noise, 5 dB SNR": lambda i, x: _mix(x, noise_at(i, len(x)), 5),
        "8 kHz input": lambda i, x: resample(resample(x, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)[: len(x)],
        "reverberant (RT60 0.5 s)": lambda i, x: (fftconvolve(x, rir)[: len(x)] / 4).astype(np.float32),
    }


def systems(models: list[str], baselines_too: bool = True, denoise: bool = True, postfilter: float | None = None,
            context: bool = False) -> dict:
    """The systems to score; `postfilter` None is the decoder's default."""
    decoder = {} if postfilter is None else {"postfilter": postfilter}
    out = {}
    for name in models:
        model = load_model(name)

        def run(x, model=model):
            data = compress(x, SAMPLE_RATE, model=model, denoise=denoise, context=context)
            return decompress(data, model=model, **decoder)[0], 8 * len(data) * SAMPLE_RATE / len(x)

        label = f"{' denoise' if denoise else ''}{' context' if context else ''}{f' postfilter {postfilter}' if decoder else ''}"
        out[f"streamcodec {Path(name).name} ({model.model_id.hex()}){label}"] = run
    if baselines_too:
        out["Codec2 3200"] = lambda x: baselines.codec2(x, 3200)
        out["Opus 6 kbps"] = lambda x: baselines.opus(x, 6000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["speech-2k"])
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--noise", type=Path, default=cache_dir() / "noise")
    parser.add_argument("--per-speaker", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="speech_robustness")
    parser.add_argument("--no-baselines", action="store_true", help="streamcodec models only (to add a model)")
    parser.add_argument("--no-denoise", action="store_true", help="skip the model's enhancer (on by default, as in "
                        "the codec)")
    parser.add_argument("--postfilter", type=float, default=None, help="the decoder's spectral-contrast post-filter "
                        "(default: the decoder's)")
    parser.add_argument("--context", action="store_true", help="the enhancer and E see the stream before each frame")
    parser.add_argument("--conditions", nargs="+", default=None, metavar="WORD",
                        help="only the conditions whose names hold one of these words (default: all)")
    args = parser.parse_args()
    threads.configure(args.threads)
    segments = dev_segments(args.corpus, args.per_speaker)
    conds = conditions(segments, args.noise)
    if args.conditions:
        conds = {k: v for k, v in conds.items() if any(word in k for word in args.conditions)}
    syss = systems(args.models, not args.no_baselines, not args.no_denoise, args.postfilter, args.context)
    rows, per_segment = [], {}
    for cname, degrade in conds.items():
        inputs = [degrade(i, x).astype(np.float32) for i, (_, x) in enumerate(segments)]
        if cname != "clean" and not args.no_baselines:
            nan = float("nan")
            per_segment[cname, INPUT] = np.array([(nan, nan, nan, dnsmos(y), nan) for y in inputs])
            rows.append({"condition": cname, "system": INPUT, "kbps": nan, "pesq_wb": nan, "stoi": nan,
                         "visqol": nan, "dnsmos": float(np.mean(per_segment[cname, INPUT][:, 3]))})
        for sname, run in syss.items():
            start = time.time()
            scores = []
            for (_, x), y_in in zip(segments, inputs):
                y, bps = run(y_in)
                y = align(x, y)
                scores.append((pesq_wb(x, y), stoi(x, y), visqol(x, y), dnsmos(y), bps / 1000))
            per_segment[cname, sname] = np.array(scores)
            s = np.mean(scores, axis=0)
            rows.append({"condition": cname, "system": sname, "pesq_wb": s[0], "stoi": s[1], "visqol": s[2],
                         "dnsmos": s[3], "kbps": s[4]})
            print(f"{cname} | {sname}: {rows[-1]} ({time.time() - start:.0f} s)", flush=True)
    lines = [f"Development set: {len(segments)} segments of 10 s of held-out speakers "
             f"({', '.join(sorted({s for s, _ in segments}))}); scores against the clean original.", "",
             "| condition | system | kbit/s | PESQ-WB | STOI | ViSQOL | DNSMOS |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        f = lambda v, d: "-" if np.isnan(v) else f"{v:.{d}f}"  # noqa: E731
        lines.append(f"| {r['condition']} | {r['system']} | {f(r['kbps'], 2)} | {f(r['pesq_wb'], 2)} | "
                     f"{f(r['stoi'], 3)} | {f(r['visqol'], 2)} | {f(r['dnsmos'], 2)} |")
    ours = [n for n in syss if n.startswith("streamcodec")]
    if not args.no_baselines:
        lines += ["", *lead_table(per_segment, ours, [n for n in [*syss, INPUT] if n not in ours],
                                  "Lead of streamcodec over each baseline")]
    elif len(ours) > 1:
        lines += ["", *lead_table(per_segment, ours[1:], ours[:1], "Each model against the first (an A/B)")]
    write_result(f"{args.out}.md", "\n".join(lines) + "\n")
    plot(rows, RESULTS / f"{args.out}.png")


def lead_table(per_segment: dict, ours: list[str], bases: list[str], what: str,
               digits: tuple = (2, 3, 2, 2)) -> list[str]:
    """Markdown: each of `ours` minus each of `bases`, per condition and measure, as the mean paired
    difference over the segments +- the half-width of its 95 % t interval."""
    from scipy.stats import t

    lines = [f"{what} (paired over the segments; mean difference +- 95 % interval):",
             "", "| condition | minus | PESQ-WB | STOI | ViSQOL | DNSMOS |", "|---|---|---|---|---|---|"]
    for (cname, sname), ours_scores in per_segment.items():
        if sname not in ours:
            continue
        for base in (n for n in bases if (cname, n) in per_segment):
            d = ours_scores[:, :4] - per_segment[cname, base][:, :4]
            half = t.ppf(0.975, len(d) - 1) * d.std(axis=0, ddof=1) / np.sqrt(len(d))
            cells = " | ".join("-" if np.isnan(m) else f"{m:+.{k}f} +- {h:.{k}f}"
                               for m, h, k in zip(d.mean(axis=0), half, digits))
            label = base if len(ours) == 1 else f"{base} ({sname})"
            lines.append(f"| {cname} | {label} | {cells} |")
    return lines


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = list(dict.fromkeys(r["condition"] for r in rows))
    names = [n for n in dict.fromkeys(r["system"] for r in rows) if not n.startswith("(")]
    fig, axes = plt.subplots(1, 4, figsize=(21, 4.5))
    for ax, key, label in zip(axes, ("pesq_wb", "stoi", "visqol", "dnsmos"), ("PESQ-WB", "STOI", "ViSQOL", "DNSMOS")):
        for k, name in enumerate(names):
            vals = [next(r[key] for r in rows if r["condition"] == c and r["system"] == name) for c in conds]
            ax.bar(np.arange(len(conds)) + k * 0.8 / len(names), vals, 0.8 / len(names), label=name)
        ax.set_xticks(np.arange(len(conds)) + 0.4 - 0.4 / len(names))
        ax.set_xticklabels(conds, rotation=60, ha="right", fontsize=7)
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
