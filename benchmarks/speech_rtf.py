"""Speed of the speech codec and what the latent search buys, on the development set.

    .venv/bin/python -m benchmarks.speech_rtf      # writes benchmarks/results/speech_rtf.{md,png}

- encoder real-time factor (log-mel + E + search at the default budget), 2 threads and 1 thread;
- decoder real-time factor (the receiver's decoder + mel inversion + RTPGHI + Griffin-Lim +
  overlap-add), with the large receiver decoder where the model ships one and with the small one;
- search gain: log-mel MSE of the quantised latent and PESQ-WB against iterations, with and
  without the previous frame's dual variable as warm start;
- payload bits per frame (distribution; the format allows at most 2,048).
"""

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import RESULTS, write_result
from benchmarks.metrics import align, pesq_wb
from benchmarks.speech_quality import dev_segments
from streamcodec.bitstream.speech import parse_speech_packet
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import SpeechDecoder, SpeechEncoder, load_model
from streamcodec.core.search import loudness_weighted_mse
from streamcodec.speech.codec import DEFAULT_GRIFFIN_LIM, DEFAULT_ITERS
from streamcodec.threads import configure
from streamcodec.train.debian import cache_dir

ITER_GRID = tuple(sorted({0, 4, 8, 16, 32, 64, DEFAULT_ITERS}))


def encode(model, x, iters, warm_start=False):
    enc = SpeechEncoder(model, iters=iters, warm_start=warm_start, dtx=False, start_time_us=0)
    start = time.perf_counter()
    packets = enc.push(x) + enc.flush()
    return packets, time.perf_counter() - start


def decode(model, packets, large=True):
    dec = SpeechDecoder(model, large_decoder=large)
    start = time.perf_counter()
    audio = np.concatenate([dec.decode(p) for p in packets] + [dec.flush()])
    return audio, time.perf_counter() - start


def frame_loss(model, packets, x) -> float:
    """The search objective (loudness-weighted log-mel MSE) of the sent latents, mean over frames."""
    from streamcodec.dsp import logmel

    dec = SpeechDecoder(model, postfilter=0.0)  # the loss of what G gives, before the post-filter
    parsed = [parse_speech_packet(p) for p in packets]
    mel = dec.decode_mel(np.stack([dec.latent(p) for p in parsed]), np.array([p.level for p in parsed]))
    target = logmel(np.concatenate([x, np.zeros(-len(x) % 16384, np.float32)])).reshape(mel.shape)
    return float(loudness_weighted_mse(target, mel)[0].mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--per-speaker", type=int, default=2)
    parser.add_argument("--model", default="speech-2k")
    args = parser.parse_args()
    model = load_model(args.model)
    segments = [x for _, x in dev_segments(args.corpus, args.per_speaker)]
    seconds = sum(len(x) for x in segments) / SAMPLE_RATE
    lines = [f"{len(segments)} dev segments, {seconds:.0f} s; live-style encoding (one frame at a time as it "
             f"completes is what push() does on a stream; here whole segments are pushed, frames are searched "
             f"as a batch unless warm start is on).", ""]

    lines += ["| measure | 2 threads | 1 thread |", "|---|---|---|"]
    timing = {}
    for threads in (2, 1):
        configure(threads)
        decode(model, encode(model, segments[0], DEFAULT_ITERS)[0])  # warm-up, the decoder's numba kernels too
        enc_t = enc0_t = dec_t = small_t = 0.0
        for x in segments:
            packets, t = encode(model, x, DEFAULT_ITERS)
            enc_t += t
            enc0_t += encode(model, x, 0)[1]
            dec_t += decode(model, packets)[1]
            small_t += decode(model, packets, large=False)[1]
        timing[threads] = (enc_t / seconds, enc0_t / seconds, dec_t / seconds, small_t / seconds)
    configure(2)
    lines.append(f"| encoder RTF, search {DEFAULT_ITERS} iterations | {timing[2][0]:.3f} | {timing[1][0]:.3f} |")
    lines.append(f"| encoder RTF, encoder only | {timing[2][1]:.3f} | {timing[1][1]:.3f} |")
    large = "the large receiver decoder" if model.receiver is not None else "the model ships no large decoder"
    lines.append(f"| decoder RTF ({DEFAULT_GRIFFIN_LIM} Griffin-Lim iterations; {large}) | {timing[2][2]:.3f} | "
                 f"{timing[1][2]:.3f} |")
    lines.append(f"| decoder RTF, small decoder (a busy receiver's) | {timing[2][3]:.3f} | {timing[1][3]:.3f} |")

    lines += ["", "Search gain (2 threads):", "",
              "| iterations | search loss | PESQ-WB | search loss, warm start | PESQ-WB, warm start |",
              "|---|---|---|---|---|"]
    curve = {False: [], True: []}
    bits = []
    for iters in ITER_GRID:
        row = []
        for warm in (False, True):
            losses, pesqs = [], []
            for x in segments:
                packets, _ = encode(model, x, iters, warm)
                losses.append(frame_loss(model, packets, x))
                pesqs.append(pesq_wb(x, align(x, decode(model, packets)[0][: len(x)])))
                if iters == DEFAULT_ITERS and not warm:
                    bits += [8 * (len(p) + 1) for p in packets]  # packet and file record byte
            curve[warm].append((float(np.mean(losses)), float(np.mean(pesqs))))
            row += [f"{curve[warm][-1][0]:.4f}", f"{curve[warm][-1][1]:.2f}"]
        lines.append(f"| {iters} | " + " | ".join(row) + " |")
        print(lines[-1], flush=True)

    bits = np.array(bits)
    lines += ["", f"Bits on the wire per frame (packet and file record byte) at the default rate: mean {bits.mean():.0f} "
              f"({bits.mean() / 1.024 / 1000:.2f} kbps), 95th percentile {np.percentile(bits, 95):.0f}, "
              f"max {bits.max()} (limit 2,048), {len(bits)} frames."]
    text = "\n".join(lines) + "\n"
    write_result("speech_rtf.md", text)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    for warm, label in ((False, "encoder start"), (True, "+ previous frame's dual")):
        a.plot(ITER_GRID, [v[0] for v in curve[warm]], "o-", label=label)
        b.plot(ITER_GRID, [v[1] for v in curve[warm]], "o-", label=label)
    a.set(xlabel="ADMM iterations", ylabel="weighted log-mel MSE", title="search loss")
    b.set(xlabel="ADMM iterations", ylabel="PESQ-WB", title="quality")
    a.legend()
    c.hist(bits, bins=30)
    c.axvline(2048, color="red", ls="--")
    c.set(xlabel="payload bits per frame", title="payload size")
    fig.tight_layout()
    fig.savefig(RESULTS / "speech_rtf.png", dpi=110)


if __name__ == "__main__":
    main()
