"""Receiver: MQTT -> per-stream jitter buffer -> decoder (worker thread) -> sink.

One receiver follows one node or every node of a channel ("+"). A node's retained meta message
names its model, stream id and start time; each (node, stream id) gets its own jitter buffer,
decoder and sink, so a server can decode many nodes at once. Nothing from the network is trusted:
packets that fail to parse, come from a node without a usable meta message, or from another
model, are counted and dropped.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiomqtt
import numpy as np
import soundfile as sf

from streamcodec.bitstream.speech import parse_speech_packet, unwrap_sequence
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.errors import BitstreamError
from streamcodec.speech import SpeechDecoder
from streamcodec.speech.codec import warm_up
from streamcodec.speech.model import resolve_model
from streamcodec.stream.jitter import JitterBuffer
from streamcodec.stream.mqtt import BrokerConfig, Retry, StreamMeta, parse_meta, parse_topic, publish_overhead, topic


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
    start_us: int = 0  # capture time of the stream's first sample (from its meta message)
    newest: int | None = None  # highest unwrapped sequence number seen
    packet_bytes: int = 0
    payload_bytes: int = 0
    wire_bytes: int = 0  # packets and their MQTT PUBLISH framing
    frames: int = 0
    concealed: int = 0
    latency: float = 0.0  # seconds from capture to decoded, latest frame
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False
    written: int = 0  # samples written to the sink
    end_sample: int | None = None  # where the stream ends, once its LAST frame is decoded
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one drain at a time per stream

    def write(self, audio: np.ndarray) -> None:
        """To the sink, cut at the stream's end (the tail of a short last frame is padding)."""
        if self.end_sample is not None:
            audio = audio[: max(0, self.end_sample - self.written)]
        self.written += len(audio)
        self.sink.write(audio)

    def line(self) -> str:
        s = self.jitter.stats
        seconds = max(s.received * BLOCK_SAMPLES / SAMPLE_RATE, 1e-9)
        kbps = lambda n_bytes: 8 * n_bytes / seconds / 1000  # noqa: E731
        return (f"{self.node}/{self.stream_id:08x}: frames {self.frames} lost {self.concealed} "
                f"late {s.late} dup {s.duplicates} latency {self.latency:.2f} s "
                f"{kbps(self.packet_bytes):.2f} kbps (payload {kbps(self.payload_bytes):.2f}, "
                f"with MQTT {kbps(self.wire_bytes):.2f})")


class Receiver:
    def __init__(self, broker: BrokerConfig, channel: str, node: str = "+", model=None,
                 sink_factory: Callable[[str, int], object] | None = None, out_dir: Path | None = None,
                 qos: int = 0, jitter_depth: int = 2, idle_timeout: float = 5.0) -> None:
        self.broker, self.qos = broker, qos
        self.subscriptions = [topic(channel, node, "audio"), topic(channel, node, "meta")]
        self.model = resolve_model(model)
        self.metas: dict[str, StreamMeta] = {}
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
                        for name in self.subscriptions:
                            await client.subscribe(name, qos=self.qos)
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
        if parsed is None:
            return
        node, kind = parsed[1], parsed[2]
        if kind == "meta":
            await self._meta(node, payload)
            return
        if kind != "audio":
            return
        meta = self.metas.get(node)
        try:
            packet = parse_speech_packet(payload)
        except BitstreamError:
            self.rejected += 1
            return
        if meta is None or meta.model_id != self.model.model_id:  # no usable meta: cannot place it in time
            self.rejected += 1
            return
        key = (node, meta.stream_id)
        state = self.streams.get(key)
        if state is None:
            state = StreamState(node, meta.stream_id, SpeechDecoder(self.model), self.sink_factory(*key),
                                JitterBuffer(self.jitter_depth), start_us=meta.start_us)
            self.streams[key] = state
        if state.newest is None:  # joining a stream: expect the frame its start time says is due
            elapsed = time.time() - state.start_us / 1e6
            reference = int(elapsed / (BLOCK_SAMPLES / SAMPLE_RATE)) if state.start_us else packet.sequence
        else:
            reference = state.newest
        seq = max(0, unwrap_sequence(packet.sequence, reference))
        state.newest = seq if state.newest is None else max(state.newest, seq)
        state.last_seen = time.monotonic()
        state.packet_bytes += len(payload)
        state.payload_bytes += len(packet.payload)
        state.wire_bytes += len(payload) + publish_overhead(name, self.qos)
        state.jitter.insert(packet, seq)
        await self._drain(state, final=False)

    async def _meta(self, node: str, payload: bytes) -> None:
        """A node's meta message: remember it; a new stream id ends the node's previous stream."""
        if not payload:  # a cleared retained message
            self.metas.pop(node, None)
            return
        try:
            meta = parse_meta(payload)
        except BitstreamError:
            self.rejected += 1
            return
        old = self.metas.get(node)
        self.metas[node] = meta
        if old is not None and old.stream_id != meta.stream_id and (node, old.stream_id) in self.streams:
            await self._drain(self.streams[(node, old.stream_id)], final=True)

    async def _drain(self, state: StreamState, final: bool) -> None:
        async with state.lock:
            if state.closed:
                return
            ready = state.jitter.pop_ready(final)
            if ready:
                state.write(await asyncio.to_thread(self._decode, state, ready))
            if state.jitter.ended or final:
                state.write(await asyncio.to_thread(state.decoder.flush))
                state.sink.close()
                state.closed = True
                self.streams.pop((state.node, state.stream_id), None)
                self.finished.append(state)

    def _decode(self, state: StreamState, ready) -> np.ndarray:
        out = []
        for seq, packet in ready:
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
            if packet.last:  # the stream ends here: a short last frame carries fewer samples
                state.end_sample = seq * BLOCK_SAMPLES + packet.samples
            capture_us = state.start_us + seq * BLOCK_SAMPLES * 1_000_000 // SAMPLE_RATE
            state.latency = time.time() - capture_us / 1e6  # from the frame's first sample
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    async def _tick_forever(self) -> None:
        """Release overdue frames, and end streams that went silent for `idle_timeout`."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for state in list(self.streams.values()):
                await self._drain(state, final=now - state.last_seen > self.idle_timeout)
