"""Receiver: MQTT -> per-stream jitter buffer -> decoder (worker thread) -> sink.

One receiver follows one node or every node of a channel ("+"). Each (node, stream id) gets its
own jitter buffer, decoder and sink, so a server can decode many nodes at once. Nothing from the
network is trusted: packets that fail to parse, or come from another model, are counted and
dropped.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiomqtt
import numpy as np
import soundfile as sf

from streamcodec.bitstream import parse_packet
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.errors import BitstreamError
from streamcodec.speech import SpeechDecoder
from streamcodec.speech.codec import MAX_PAYLOAD_BYTES, warm_up
from streamcodec.stream.jitter import JitterBuffer
from streamcodec.stream.mqtt import BrokerConfig, Retry, parse_topic, topic


class WavSink:
    """One 16 kHz mono WAV per stream."""

    def __init__(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._file = sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, subtype="PCM_16")

    def write(self, audio: np.ndarray) -> None:
        self._file.write(np.clip(audio, -1.0, 1.0))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class StreamState:
    node: str
    stream_id: int
    decoder: SpeechDecoder
    sink: object
    jitter: JitterBuffer = field(default_factory=JitterBuffer)
    frames: int = 0
    concealed: int = 0
    latency: float = 0.0  # seconds from capture to decoded, latest frame
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one drain at a time per stream

    def line(self) -> str:
        s = self.jitter.stats
        return (f"{self.node}/{self.stream_id:08x}: frames {self.frames} lost {self.concealed} "
                f"late {s.late} dup {s.duplicates} latency {self.latency:.2f} s")


class Receiver:
    def __init__(self, broker: BrokerConfig, channel: str, node: str = "+", model=None,
                 sink_factory: Callable[[str, int], object] | None = None, out_dir: Path | None = None,
                 qos: int = 0, jitter_depth: int = 2, idle_timeout: float = 5.0) -> None:
        self.broker, self.qos = broker, qos
        self.subscription = topic(channel, node, "audio")
        self.model = model
        self.sink_factory = sink_factory or (lambda n, sid: WavSink(Path(out_dir or ".") / f"{n}-{sid:08x}.wav"))
        self.jitter_depth = jitter_depth
        self.idle_timeout = idle_timeout
        self.streams: dict[tuple[str, int], StreamState] = {}
        self.finished: list[StreamState] = []
        self.rejected = 0
        self.reconnects = 0

    async def run(self, stop_after_streams: int | None = None) -> list[StreamState]:
        """Receive until cancelled, or until `stop_after_streams` streams have ended. A lost
        connection is retried with backoff; a refused login or a TLS failure raises BrokerError."""
        await asyncio.to_thread(warm_up, self.model)
        ticker = asyncio.create_task(self._tick_forever())
        retry = Retry(self.broker)
        try:
            while True:
                try:
                    async with self.broker.client() as client:
                        await client.subscribe(self.subscription, qos=self.qos)
                        retry.connected()
                        async for message in client.messages:
                            await self.handle(str(message.topic), bytes(message.payload))
                            if stop_after_streams is not None and len(self.finished) >= stop_after_streams:
                                return self.finished
                except (aiomqtt.MqttError, OSError) as exc:
                    self.reconnects += 1
                    await retry.failed(exc)
        finally:
            ticker.cancel()

    async def handle(self, name: str, payload: bytes) -> None:
        parsed = parse_topic(name)
        if parsed is None or parsed[2] != "audio":
            return
        try:
            packet = parse_packet(payload, MAX_PAYLOAD_BYTES)
        except BitstreamError:
            self.rejected += 1
            return
        key = (parsed[1], packet.stream_id)
        state = self.streams.get(key)
        if state is None:
            decoder = SpeechDecoder(self.model)
            try:
                decoder.read_packet(packet)
            except BitstreamError:
                self.rejected += 1
                return
            state = StreamState(parsed[1], packet.stream_id, decoder, self.sink_factory(*key),
                                JitterBuffer(self.jitter_depth))
            self.streams[key] = state
        state.last_seen = time.monotonic()
        state.jitter.insert(packet)
        await self._drain(state, final=False)

    async def _drain(self, state: StreamState, final: bool) -> None:
        async with state.lock:
            if state.closed:
                return
            ready = state.jitter.pop_ready(final)
            if ready:
                state.sink.write(await asyncio.to_thread(self._decode, state, ready))
            if state.jitter.ended or final:
                state.sink.write(await asyncio.to_thread(state.decoder.flush))
                state.sink.close()
                state.closed = True
                self.streams.pop((state.node, state.stream_id), None)
                self.finished.append(state)

    def _decode(self, state: StreamState, ready) -> np.ndarray:
        out = []
        for packet in ready:
            if packet is None:
                out.append(state.decoder.conceal())
                state.concealed += 1
                continue
            try:
                out.append(state.decoder.decode(packet))
            except BitstreamError:
                out.append(state.decoder.conceal())
                state.concealed += 1
                continue
            state.frames += 1
            state.latency = time.time() - packet.capture_time_us / 1e6  # from the frame's first sample
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    async def _tick_forever(self) -> None:
        """Release overdue frames, and end streams that went silent for `idle_timeout`."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for state in list(self.streams.values()):
                await self._drain(state, final=now - state.last_seen > self.idle_timeout)
