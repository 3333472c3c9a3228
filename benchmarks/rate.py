"""Bits on the wire (issue 11): what a file, a stream of short messages and silence really cost,
every byte counted, and the rate-quality curve of the hard budget, on the development set.

    .venv/bin/python -m benchmarks.rate          # writes benchmarks/results/rate.{md,png}
    .venv/bin/python -m benchmarks.rate --live   # writes benchmarks/results/rate_live.md

Wire rate = bytes of the file (header, records, packets) x 8 / duration. A live stream's rate is
counted on the node's own link: a relay between the sender and a real Mosquitto keeps every MQTT
packet the node sends (tests/brokers.py UplinkTap): connect, meta, status, each audio PUBLISH
with its framing (MQTT 5 topic alias, or the whole topic name where the broker takes no alias).
TCP/IP headers come on top; they depend on the link (40 bytes a segment over IPv4, 52 with the
timestamps Linux adds, far less with header compression), so they are an estimate. Quality: PESQ-WB and STOI on 10 s development segments, decoded audio
aligned on magnitude spectrograms (benchmarks/metrics.py). "Before" is the previous release
(format v1, commit --before), run from a git worktree on the same segments with the same metrics.
"""

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks import RESULTS, write_result
from benchmarks.checkouts import run_in, worktree
from benchmarks.metrics import align, pesq_wb, stoi
from benchmarks.speech_quality import dev_segments
from streamcodec import threads
from streamcodec.bitstream.speech import read_speech_file
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.defaults import SPEECH_ITERS
from streamcodec.speech import compress, decompress, load_model
from streamcodec.train.debian import cache_dir

RATES = (2.0, 1.9, 1.8, 1.7)


def wire(data: bytes, samples: int) -> dict:
    f = read_speech_file(data)
    return {"kbps": 8 * len(data) * SAMPLE_RATE / samples / 1000,
            "payload_kbps": 8 * sum(len(p.payload) for p in f.packets) * SAMPLE_RATE / samples / 1000,
            "frames": len(f.packets), "silent": sum(p.kind == 1 for p in f.packets),
            "max_frame_bits": max(8 * (len(p.encode()) + 1) for p in f.packets)}


def accounting(corpus: Path, model) -> list[str]:
    rng = np.random.default_rng(0)
    dev = {w.stem: sf.read(w, dtype="float32")[0] for w in sorted((corpus / "dev").glob("*.wav"))}
    rows = []
    for name, audio in dev.items():
        x = audio[: 180 * SAMPLE_RATE]
        rows.append((f"long recording: {name}, {len(x) / SAMPLE_RATE:.0f} s", wire(compress(x, SAMPLE_RATE, model=model), len(x))))
    messages = []
    for i in range(40):
        audio = list(dev.values())[i % len(dev)]
        n = int(rng.uniform(1.0, 8.0) * SAMPLE_RATE)
        start = int(rng.integers(0, len(audio) - n))
        messages.append(audio[start : start + n])
    coded = [compress(m, SAMPLE_RATE, model=model) for m in messages]
    total_bytes, total_samples = sum(map(len, coded)), sum(map(len, messages))
    worst = max(8 * len(c) * SAMPLE_RATE / len(m) / 1000 for c, m in zip(coded, messages))
    frames = [read_speech_file(c) for c in coded]
    rows.append((f"40 short messages (1-8 s, {total_samples / SAMPLE_RATE:.0f} s in all)",
                 {"kbps": 8 * total_bytes * SAMPLE_RATE / total_samples / 1000,
                  "payload_kbps": 8 * sum(len(p.payload) for f in frames for p in f.packets) * SAMPLE_RATE / total_samples / 1000,
                  "frames": sum(len(f.packets) for f in frames), "silent": sum(p.kind == 1 for f in frames for p in f.packets),
                  "max_frame_bits": max(8 * (len(p.encode()) + 1) for f in frames for p in f.packets),
                  "worst": worst}))
    short = [a[s : s + int(1.4 * SAMPLE_RATE)] for a in dev.values() for s in rng.integers(0, len(a) - 30000, 5)]
    rows.append(("10 messages of 1.4 s, the worst of them",
                 max((wire(compress(m, SAMPLE_RATE, model=model), len(m)) for m in short), key=lambda r: r["kbps"])))
    t = np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE
    floor = (rng.standard_normal(len(t)) * 10 ** (-60 / 20)).astype(np.float32)
    hum = (10 ** (-45 / 20) * np.sin(2 * np.pi * 50 * t)).astype(np.float32) + floor
    for label, x in (("10 s of digital silence", np.zeros(len(t), np.float32)),
                     ("10 s of a -60 dBFS white noise floor", floor), ("10 s of -45 dBFS mains hum on that floor", hum)):
        rows.append((label, wire(compress(x, SAMPLE_RATE, model=model), len(x))))
    lines = ["| input | kbit/s on the wire | payload kbit/s | frames (silent) | largest frame, bits |", "|---|---|---|---|---|"]
    for label, r in rows:
        extra = f" (worst message {r['worst']:.3f})" if "worst" in r else ""
        lines.append(f"| {label} | {r['kbps']:.3f}{extra} | {r['payload_kbps']:.3f} | {r['frames']} ({r['silent']}) | "
                     f"{r['max_frame_bits']} |")
    return lines


async def _live_run(x: np.ndarray, model, qos: int, broker_conf: str) -> dict:
    """Send x through Mosquitto as a node would (paced as fast as the encoder goes, which only
    changes how many keep-alive pings fall in) and count the node's uplink."""
    from streamcodec.bitstream.speech import parse_speech_packet
    from streamcodec.speech import SpeechEncoder
    from streamcodec.stream.mqtt import BrokerConfig, topic
    from streamcodec.stream.sender import Sender, file_source
    from tests.brokers import Mosquitto, UplinkTap

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        sf.write(wav, x, SAMPLE_RATE, subtype="FLOAT")
        mosquitto = Mosquitto(Path(tmp), broker_conf).start()
        tap = await UplinkTap(mosquitto.port).start()
        try:
            sender = Sender(BrokerConfig(port=tap.port), "bench", "node1", SpeechEncoder(model), qos=qos)
            stats = await sender.run(file_source(wav, fast=True))
            await asyncio.sleep(0.2)
        finally:
            tap.close()
            mosquitto.stop()
    kbps = 1000 * len(x) / SAMPLE_RATE / 8  # bytes per kbit/s over the recording
    audio = [p for p in tap.publishes() if p[0] in (topic("bench", "node1", "audio"), "")]
    everything = sum(len(d) for _, d in tap.packets)
    return {"frames": stats.sent, "payload": sum(len(parse_speech_packet(a[1]).payload) for a in audio) / kbps,
            "packets": sum(len(a[1]) for a in audio) / kbps, "audio": sum(a[2] for a in audio) / kbps,
            "all": everything / kbps, "tcp": (everything + 52 * len(tap.packets)) / kbps,
            "framing": max(a[2] - len(a[1]) for a in audio[1:])}


def live(corpus: Path, model) -> list[str]:
    dev = {w.stem: sf.read(w, dtype="float32")[0] for w in sorted((corpus / "dev").glob("*.wav"))}
    name, audio = next(iter(dev.items()))
    x = audio[: 180 * SAMPLE_RATE]
    lines = [f"Live stream of {len(x) / SAMPLE_RATE:.0f} s ({name}) through Mosquitto, counted on the node's uplink:", "",
             "| link | frames | payload | speech packets | audio PUBLISHes | all MQTT the node sends | "
             "+ TCP/IPv4 (est.) | framing per frame, bytes |", "|---|---|---|---|---|---|---|---|"]
    for label, qos, conf in (("MQTT 5, topic alias, QoS 1", 1, ""), ("MQTT 5, topic alias, QoS 0", 0, ""),
                             ("MQTT 5, broker without aliases, QoS 1", 1, "allow_anonymous true\nmax_topic_alias 0\n")):
        r = asyncio.run(_live_run(x, model, qos, conf))
        lines.append(f"| {label} | {r['frames']} | {r['payload']:.3f} | {r['packets']:.3f} | {r['audio']:.3f} | "
                     f"{r['all']:.3f} | {r['tcp']:.3f} | {r['framing']} |")
        print(lines[-1], flush=True)
    return lines + ["", "kbit/s over the recording's duration. Each frame's budget pays its PUBLISH framing: the "
                    "aliased one where the broker grants an alias (the topic name the first PUBLISH carries is "
                    "paid back by later frames), the whole topic name where it grants none, so the audio "
                    "PUBLISHes stay within the 2.0 kbit/s on every link; without an alias the payload has less room."]


def before(segments, commit: str) -> list[tuple[np.ndarray, float]]:
    """Decode every segment with the release at `commit` (a git worktree): (audio, wire kbit/s)."""
    with tempfile.TemporaryDirectory() as tmp, worktree(commit) as tree:
        for i, (_, x) in enumerate(segments):
            sf.write(Path(tmp) / f"{i}.wav", x, SAMPLE_RATE, subtype="FLOAT")
        script = ("import sys, soundfile as sf; from pathlib import Path; "
                  "from streamcodec.speech import compress, decompress\n"
                  "for w in sorted(Path(sys.argv[1]).glob('*.wav')):\n"
                  "    x, r = sf.read(w, dtype='float32'); d = compress(x, r)\n"
                  "    w.with_suffix('.size').write_text(str(len(d)))\n"
                  "    sf.write(w.with_suffix('.out.flac'), decompress(d)[0], 16000, subtype='PCM_24')\n")
        run_in(tree, script, tmp)
        out = []
        for i, (_, x) in enumerate(segments):
            size = int((Path(tmp) / f"{i}.size").read_text())
            out.append((sf.read(Path(tmp) / f"{i}.out.flac", dtype="float32")[0], 8 * size * SAMPLE_RATE / len(x) / 1000))
        return out


def quality(segments, model, commit: str) -> tuple[list[str], list[dict]]:
    rows = []

    def score(name, decoded):
        pesq, st, kbps = [], [], []
        for (_, x), (y, rate) in zip(segments, decoded):
            y = align(x, y)
            pesq.append(pesq_wb(x, y))
            st.append(stoi(x, y))
            kbps.append(rate)
        rows.append({"name": name, "kbps": float(np.mean(kbps)), "pesq_wb": float(np.mean(pesq)),
                     "stoi": float(np.mean(st))})
        print(rows[-1], flush=True)

    score(f"before: format v1 ({commit}), no budget, no DTX", before(segments, commit))
    for kbps in RATES:
        decoded = []
        for _, x in segments:
            data = compress(x, SAMPLE_RATE, model=model, kbps=kbps)
            decoded.append((decompress(data, model=model)[0], wire(data, len(x))["kbps"]))
        score(f"format v2, --kbps {kbps}", decoded)
    lines = ["| system | kbit/s on the wire | PESQ-WB | STOI |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['kbps']:.3f} | {r['pesq_wb']:.3f} | {r['stoi']:.4f} |" for r in rows]
    return lines, rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    v2 = [r for r in rows if r["name"].startswith("format v2")]
    for ax, key, label in ((axes[0], "pesq_wb", "PESQ-WB"), (axes[1], "stoi", "STOI (spectrogram-aligned)")):
        ax.plot([r["kbps"] for r in v2], [r[key] for r in v2], "o-", label="format v2, hard budget")
        ax.scatter([rows[0]["kbps"]], [rows[0][key]], marker="x", color="k", label="before (v1)")
        ax.set_xlabel("kbit/s on the wire, every byte counted")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--per-speaker", type=int, default=10)
    parser.add_argument("--model", default="speech-2k")
    parser.add_argument("--before", default="a3d9882", help="commit of the previous release")
    parser.add_argument("--threads", type=int, default=1, help="threads (default 1: a training run may share the machine)")
    parser.add_argument("--live", action="store_true", help="only the live stream's uplink (rate_live.md)")
    args = parser.parse_args()
    threads.configure(args.threads)  # the environment too, so the "before" subprocess uses as many
    model = load_model(args.model)
    if args.live:
        write_result("rate_live.md", f"Model {args.model} ({model.model_id.hex()}), default search ({SPEECH_ITERS} iterations), DTX on.\n\n"
                     + "\n".join(live(args.corpus, model)) + "\n")
        return
    acct = accounting(args.corpus, model)
    print("\n".join(acct), flush=True)
    segments = dev_segments(args.corpus, args.per_speaker)
    qual, rows = quality(segments, model, args.before)
    text = (f"Model {args.model} ({model.model_id.hex()}), default search ({SPEECH_ITERS} iterations), DTX on.\n\n"
            "Bits on the wire (files: every byte; a live stream adds MQTT framing on top):\n\n" + "\n".join(acct)
            + f"\n\nRate and quality, {len(segments)} development segments of 10 s "
            "(PESQ-WB, STOI after magnitude-spectrogram alignment):\n\n" + "\n".join(qual) + "\n")
    write_result("rate.md", text)
    plot(rows, RESULTS / "rate.png")


if __name__ == "__main__":
    main()
