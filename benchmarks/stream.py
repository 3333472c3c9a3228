"""Live streaming over Mosquitto on loopback, the receiver in this process:

- capture-to-decoded latency of one stream: the bundled sample paced in real time through the
  sender, the broker and the receiver; latency of a frame = time its audio is decoded and ready to
  play - capture time of its first sample (the 1.024 s frame included);
- receiver capacity as a curve: N nodes each publish a frame every 1.024 s, staggered over the
  frame period as independent nodes would be, for `--seconds`; reported per N: latency median and
  max over every frame, frames shed, and the receiver's CPU (process time / wall time, in cores).
  The receiver uses the default thread policy (decoder threads = CPUs, BLAS at 1 thread each).

    .venv/bin/python -m benchmarks.stream        # writes benchmarks/results/stream.md
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks import write_result
from streamcodec import threads
from streamcodec.speech import SpeechEncoder, load_model
from streamcodec.stream.app import sample_path
from streamcodec.stream.devices import PREBUFFER_SECONDS
from streamcodec.stream.mqtt import BrokerConfig, StreamMeta, topic
from streamcodec.stream.receiver import Receiver
from streamcodec.stream.sender import Sender, file_source
from tests.brokers import Mosquitto

FRAME = 1.024


class NullSink:
    path = None

    def write(self, audio):
        pass

    def close(self):
        pass


class LatencyReceiver(Receiver):
    """Records each frame's latency as it is decoded."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: list[float] = []

    def _decode_packet(self, state, seq, packet):
        out = super()._decode_packet(state, seq, packet)
        self.latencies.append(state.latency)
        return out


def receiver(config, channel, model) -> LatencyReceiver:
    workers = threads.choose("decode")
    threads.configure(1)
    return LatencyReceiver(config, channel, model=model, sink_factory=lambda *_: NullSink(), workers=workers)


async def latency(model, config) -> list[float]:
    r = receiver(config, "bench", model)
    task = asyncio.create_task(r.run(stop_after_streams=1))
    await r.subscribed.wait()
    sender = Sender(config, "bench", "node", SpeechEncoder(model, deadline=0.2))
    await sender.run(file_source(sample_path()))
    await asyncio.wait_for(task, 30)
    return r.latencies


async def capacity(model, config, nodes: int, packets: list[bytes], seconds: float) -> dict:
    r = receiver(config, f"cap{nodes}", model)
    task = asyncio.create_task(r.run(stop_after_streams=nodes))
    await r.subscribed.wait()
    frames = int(seconds / FRAME)
    t0 = time.time() + 1.0
    starts = [t0 + FRAME * i / nodes for i in range(nodes)]  # node i publishes at starts[i] + k * FRAME
    cpu0, wall0 = time.process_time(), time.monotonic()
    async with config.client() as client:
        for i in range(nodes):
            # capture of frame 0 began one frame before it is published, as at a real node
            meta = StreamMeta(model.model_id, 1000 + i, int((starts[i] - FRAME) * 1e6))
            await client.publish(topic(f"cap{nodes}", f"n{i}", "meta"), meta.payload(), qos=1, retain=True)
        schedule = sorted((starts[i] + k * FRAME, i, k) for i in range(nodes) for k in range(frames))
        for when, i, k in schedule:
            await asyncio.sleep(max(0.0, when - time.time()))
            await client.publish(topic(f"cap{nodes}", f"n{i}", "audio"), packets[k])  # the last carries LAST
    await asyncio.wait_for(task, 120)
    cores = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    lat = np.array(r.latencies)
    shed = sum(s.shed for s in r.finished)
    return {"nodes": nodes, "median": np.median(lat), "max": lat.max(), "shed": shed, "frames": nodes * frames,
            "cores": cores}


async def main_async(args) -> str:
    model = load_model(args.model)
    audio, rate = sf.read(sample_path(), dtype="float32")
    frames = int(args.seconds / FRAME)
    enc = SpeechEncoder(model, iters=0, stream_id=1, start_time_us=0)
    packets = enc.push(np.tile(audio, 1 + frames * 16384 // len(audio))[: frames * 16384 - 100]) + enc.flush()
    with tempfile.TemporaryDirectory() as folder:
        mosquitto = Mosquitto(Path(folder)).start()
        try:
            config = BrokerConfig(port=mosquitto.port)
            lat = np.array(await latency(model, config))
            rows = [await capacity(model, config, n, packets, args.seconds) for n in args.nodes]
        finally:
            mosquitto.stop()
    lines = [f"Mosquitto on loopback, {threads.available_cpus()} cores shared by the publisher(s), the broker and "
             f"the receiver ({threads.choose('decode')} decoder threads, BLAS at 1 thread each).", "",
             f"One stream (bundled sample, real-time pace, search deadline 0.2 s, sender in this process): "
             f"capture to decoded median {np.median(lat):.3f} s, max {lat.max():.3f} s over {len(lat)} frames "
             f"(frame length 1.024 s); a speaker adds its {PREBUFFER_SECONDS} s playout buffer: capture to "
             f"playback {np.median(lat) + PREBUFFER_SECONDS:.3f} s median.", "",
             f"Capacity: N nodes, a frame each every 1.024 s (staggered), {frames} frames per node.", "",
             "| nodes | latency median | latency max | frames shed | receiver CPU (cores) |", "|---|---|---|---|---|"]
    lines += [f"| {r['nodes']} | {r['median']:.2f} s | {r['max']:.2f} s | {r['shed']} of {r['frames']} | "
              f"{r['cores']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="speech-2k")
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 20, 30, 40, 50])
    parser.add_argument("--seconds", type=float, default=15.0)
    write_result("stream.md", asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
