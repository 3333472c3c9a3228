"""The receiver under a flood, a broker outage and a sender stall (issue 12), with the shipped
model, a real Mosquitto on loopback and the `streamcodec send` command in its own process:

- flood: a real-time stream runs; after its sixth frame another process publishes 3,000 fake streams (half
  from one node changing its stream id, half from new nodes: a meta message and a packet each).
  Reported: the legitimate stream's capture-to-decoded latency before, during and after the
  flood, frames shed, refusals, and this receiver's resident memory before, at its peak, and
  once the flood's streams have timed out;
- outage: Mosquitto stops for 10 s in the middle of a stream and comes back on the same port;
- stall: the sender process is stopped (SIGSTOP) for 10 s, then continued.
For outage and stall: recordings per stream and their length against the input's (the receiver's
idle timeout, 5 s, is shorter than both, so each stream is closed and resumed).

    .venv/bin/python -m benchmarks.receiver_faults     # writes benchmarks/results/receiver_faults.md
"""

import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks import write_result
from streamcodec.bitstream.speech import parse_speech_packet
from streamcodec.speech import load_model
from streamcodec.stream.app import sample_path
from streamcodec.stream.mqtt import BrokerConfig
from streamcodec.stream.receiver import Receiver
from tests.brokers import FLOOD, Mosquitto

EXTRA = {}


class Watched(Receiver):
    """Records (wall time, latency) of every decoded frame of node `legit`, and when each of its
    packets first reached the receiver (on either of its connections)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[tuple[float, float]] = []
        self.arrivals: dict[int, float] = {}

    def _audio(self, name, node, payload, arrival, via=0):
        if node == "legit":
            self.arrivals.setdefault(parse_speech_packet(payload).sequence, arrival)
        super()._audio(name, node, payload, arrival, via)

    def _decode_packet(self, state, seq, packet):
        out = super()._decode_packet(state, seq, packet)
        if state.node == "legit":
            self.frames.append((time.monotonic(), state.latency))
        return out


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sender(port: int, wav: Path, node: str = "legit") -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcodec", "send", "--file", str(wav), "--broker", f"mqtt://127.0.0.1:{port}",
        "--channel", "bench", "--node", node, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def flood(model, tmp: Path, port: int) -> dict:
    wav = tmp / "long.wav"
    audio, rate = sf.read(sample_path(), dtype="float32")
    sf.write(wav, np.tile(audio, 2), rate)  # about 26 s
    receiver = Watched(BrokerConfig(port=port), "bench", model=model, out_dir=tmp / "flood", **EXTRA)
    task = asyncio.create_task(receiver.run())
    await receiver.subscribed.wait()
    proc = await sender(port, wav)
    while len(receiver.frames) < 6:  # the legitimate stream is established
        await asyncio.sleep(0.1)
    before = rss_mib()
    peak = before
    script = tmp / "flood.py"
    archive = next(iter(receiver.streams.values())).archive.path.read_bytes()
    packet = archive[15 : 15 + archive[14] + 1]  # the stream's first packet (after the 14-byte file header)
    script.write_text(FLOOD.format(port=port, channel="bench", model=model.model_id.hex(), start=0, packet=packet.hex(), seconds=0))
    t0 = time.monotonic()
    attacker = await asyncio.create_subprocess_exec(sys.executable, str(script))
    while attacker.returncode is None:
        peak = max(peak, rss_mib())
        await asyncio.sleep(0.2)
    t1 = time.monotonic()
    await proc.wait()
    while len(receiver.streams) > 0:
        peak = max(peak, rss_mib())
        await asyncio.sleep(0.5)
    after = rss_mib()
    task.cancel()
    (legit,) = [s for s in receiver.finished if s.node == "legit"]
    lat = np.array([latency for _, latency in receiver.frames])
    when = np.array([t for t, _ in receiver.frames])
    during = lat[(when >= t0) & (when <= t1 + 10.0)]
    return {"flood_seconds": t1 - t0, "before": np.median(lat[when < t0]), "during_max": during.max(),
            "during_median": np.median(during), "after": np.median(lat[when > t1 + 10.0]),
            "longest_pause": np.diff(when).max(), "longest_arrival_gap": np.diff(sorted(receiver.arrivals.values())).max(),
            "shed": legit.shed, "frames": legit.frames, "concealed": legit.concealed,
            "refused": receiver.refused.total(), "opened": len(list((tmp / "flood").glob("*.wav"))) - 1,
            "rss_before": before, "rss_peak": peak, "rss_after": after}


async def fault(model, tmp: Path, mosquitto: Mosquitto, kind: str) -> dict:
    wav = tmp / "long.wav"
    out = tmp / kind
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "bench", model=model, out_dir=out)
    task = asyncio.create_task(receiver.run())
    await receiver.subscribed.wait()
    proc = await sender(mosquitto.port, wav)
    while not receiver.streams:
        await asyncio.sleep(0.1)
    await asyncio.sleep(3.0)
    if kind == "outage":
        mosquitto.stop()
        await asyncio.sleep(10.0)
        mosquitto.start()
    else:
        os.kill(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(10.0)
        os.kill(proc.pid, signal.SIGCONT)
    await proc.wait()
    while receiver.streams:
        await asyncio.sleep(0.5)
    task.cancel()
    wavs = sorted(out.glob("*.wav"))
    parts = [s for s in receiver.finished]
    return {"recordings": len(wavs), "parts": len(parts), "samples": sum(sf.info(str(w)).frames for w in wavs),
            "input": sf.info(str(wav)).frames, "frames": sum(s.frames for s in parts),
            "concealed": sum(s.concealed for s in parts), "shed": sum(s.shed for s in parts)}


async def main_async() -> str:
    model = load_model("speech-2k")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        mosquitto = Mosquitto(tmp).start()
        try:
            f = await flood(model, tmp, mosquitto.port)
            outage = await fault(model, tmp, mosquitto, "outage")
            stall = await fault(model, tmp, mosquitto, "stall")
        finally:
            mosquitto.stop()
    lines = [
        "Mosquitto on loopback, speech-2k, `streamcodec send` in its own process (real time, 26 s), the "
        "receiver in this process; 2 cores shared by all.", "",
        f"Flood: 3,000 fake streams published in {f['flood_seconds']:.1f} s, 6 frames into a legitimate stream.", "",
        "| legitimate stream | value |", "|---|---|",
        f"| latency before the flood, median | {f['before']:.2f} s |",
        f"| latency from the flood's start to 10 s after its end, median / max | {f['during_median']:.2f} / "
        f"{f['during_max']:.2f} s |",
        f"| latency later, median | {f['after']:.2f} s |",
        f"| longest time between two decoded frames | {f['longest_pause']:.2f} s (frames are 1.024 s) |",
        f"| longest time between two of its packets reaching the receiver | {f['longest_arrival_gap']:.2f} s |",
        f"| frames decoded / concealed / shed | {f['frames']} / {f['concealed']} / {f['shed']} |",
        f"| fake streams opened / messages refused | {f['opened']} / {f['refused']} |",
        f"| receiver memory before / peak / after the flood's streams timed out | "
        f"{f['rss_before']:.0f} / {f['rss_peak']:.0f} / {f['rss_after']:.0f} MiB |", "",
        "| 10 s fault mid-stream | recordings | stream parts | samples recorded / input | frames decoded / "
        "concealed / shed |", "|---|---|---|---|---|"]
    for name, r in (("broker outage", outage), ("sender stopped (SIGSTOP)", stall)):
        lines.append(f"| {name} | {r['recordings']} | {r['parts']} | {r['samples']} / {r['input']} | "
                     f"{r['frames']} / {r['concealed']} / {r['shed']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    write_result("receiver_faults.md", asyncio.run(main_async()))


if __name__ == "__main__":
    main()
