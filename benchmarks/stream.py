"""Live streaming over a loopback broker (the embedded amqtt broker, in process):

- capture-to-playback latency: the bundled sample paced in real time through sender, broker and
  receiver; latency of a frame = time its audio is decoded and ready to play - capture time of its
  first sample (target <= 1.5 s, the 1.024 s frame included);
- receiver capacity: N streams of pre-encoded frames published at once; real-time streams =
  seconds of audio decoded per second of wall time.

    .venv/bin/python -m benchmarks.stream        # writes benchmarks/results/stream.md
"""

import argparse
import asyncio
import time

import numpy as np

from benchmarks import write_result
from streamcodec.speech import SpeechEncoder, load_model
from streamcodec.stream.app import free_port, sample_path
from streamcodec.stream.broker import start_broker
from streamcodec.stream.devices import PREBUFFER_SECONDS
from streamcodec.stream.mqtt import BrokerConfig, StreamMeta, topic
from streamcodec.stream.receiver import Receiver
from streamcodec.stream.sender import Sender, file_source




class NullSink:
    path = None

    def write(self, audio):
        pass

    def close(self):
        pass


class LatencyReceiver(Receiver):
    """Records each frame's latency as it is decoded."""

    latencies: list

    def _decode_packet(self, state, seq, packet):
        out = super()._decode_packet(state, seq, packet)
        self.latencies.append(state.latency)
        return out


async def latency(model, config) -> list[float]:
    receiver = LatencyReceiver(config, "bench", model=model, sink_factory=lambda *_: NullSink())
    receiver.latencies = []
    task = asyncio.create_task(receiver.run(stop_after_streams=1))
    await asyncio.sleep(0.3)
    sender = Sender(config, "bench", "node", SpeechEncoder(model, deadline=0.2))
    await sender.run(file_source(sample_path()))
    await asyncio.wait_for(task, 30)
    return receiver.latencies


async def capacity(model, config, streams: int, frames: int = 8) -> float:
    import soundfile as sf

    audio, _ = sf.read(sample_path(), dtype="float32")
    audio = np.tile(audio, 1 + frames * 16384 // len(audio))[: frames * 16384]
    encoded = []
    for i in range(streams):
        enc = SpeechEncoder(model, iters=0, stream_id=i)
        encoded.append((enc, enc.push(audio) + enc.flush()))
    receiver = Receiver(config, "cap", model=model, sink_factory=lambda *_: NullSink(), jitter_depth=1)
    task = asyncio.create_task(receiver.run(stop_after_streams=streams))
    await asyncio.sleep(0.3)
    start = time.perf_counter()
    async with config.client() as client:
        for i, (enc, _) in enumerate(encoded):
            meta = StreamMeta(model.model_id, enc.stream_id, enc.start_time_us)
            await client.publish(topic("cap", f"n{i}", "meta"), meta.payload(), qos=1, retain=True)
        for k in range(len(encoded[0][1])):
            for i in range(streams):
                await client.publish(topic("cap", f"n{i}", "audio"), encoded[i][1][k])
    await asyncio.wait_for(task, 600)
    elapsed = time.perf_counter() - start
    return streams * len(encoded[0][1]) * 1.024 / elapsed


async def main_async(args) -> str:
    model = load_model(args.model)
    port = free_port()
    broker = await start_broker(port=port)
    config = BrokerConfig(port=port)
    try:
        lat = np.array(await latency(model, config))
        rows = [(n, await capacity(model, config, n)) for n in (1, 4, 8)]
    finally:
        await broker.shutdown()
    lines = ["Loopback, embedded amqtt broker, 2 cores shared by sender, broker and receiver.", "",
             f"Capture to decoded (bundled sample, real-time pace, search deadline 0.2 s): median "
             f"{np.median(lat):.3f} s, max {lat.max():.3f} s over {len(lat)} frames (frame length 1.024 s); "
             f"a speaker adds its {PREBUFFER_SECONDS} s playout buffer: capture to playback "
             f"{np.median(lat) + PREBUFFER_SECONDS:.3f} s median, {lat.max() + PREBUFFER_SECONDS:.3f} s max.", "",
             "| streams published at once | real-time streams decoded |", "|---|---|"]
    lines += [f"| {n} | {rt:.1f} |" for n, rt in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="speech-2k")
    text = asyncio.run(main_async(parser.parse_args()))
    write_result("stream.md", text)


if __name__ == "__main__":
    main()
