"""Sender: audio source -> framer and encoder (worker thread) -> bounded outbox -> MQTT.

The encoder runs in a worker thread so the event loop keeps reading audio and talking to the
broker. When the broker is unreachable, packets wait in a bounded outbox; beyond `backlog` the
oldest are dropped and counted. The publisher reconnects with exponential backoff and resumes.
"""

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

import aiomqtt
import numpy as np

from streamcodec.bitstream.speech import TYPE_COMFORT, parse_speech_packet
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.speech import SpeechEncoder
from streamcodec.speech.codec import warm_up
from streamcodec.stream.mqtt import BrokerConfig, BrokerError, Retry, StreamMeta, publish_overhead, topic

log = logging.getLogger("streamcodec.sender")
CHUNK = 512  # samples per read: 32 ms (the frame is complete at most this long after its last sample)


@dataclass
class SenderStats:
    frames: int = 0
    sent: int = 0
    dropped: int = 0
    denied: int = 0  # publishes the broker refused (MQTT 5 and QoS 1 only: QoS 0 gets no answer)
    payload_bits: int = 0
    packet_bits: int = 0  # payload and packet headers
    wire_bits: int = 0  # and the MQTT PUBLISH framing
    silent: int = 0
    iterations: int = 0
    reconnects: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        seconds = max(self.sent * 1.024, 1e-9)
        return (f"frames {self.frames} (silent {self.silent}) sent {self.sent} dropped {self.dropped} "
                + (f"DENIED {self.denied} " if self.denied else "") +
                f"packets {self.packet_bits / seconds / 1000:.2f} kbps (payload {self.payload_bits / seconds / 1000:.2f}, "
                f"with MQTT {self.wire_bits / seconds / 1000:.2f}) search {self.iterations} it "
                f"reconnects {self.reconnects}")


async def file_source(path, fast: bool = False, chunk: int = CHUNK) -> AsyncIterator[np.ndarray]:
    """A sound file as 16 kHz chunks, paced in real time unless `fast`."""
    import soundfile as sf

    from streamcodec.dsp.audio import StreamResampler, to_codec_audio

    with sf.SoundFile(str(path)) as f:
        resampler = StreamResampler(f.samplerate)
        start = time.monotonic()
        sent = 0
        for block in f.blocks(blocksize=chunk * f.samplerate // SAMPLE_RATE, dtype="float32", always_2d=True):
            x = resampler.push(to_codec_audio(block, SAMPLE_RATE))
            sent += len(x)
            if not fast:  # like a microphone: a chunk is handed over once its last sample is "captured"
                await asyncio.sleep(max(0.0, start + sent / SAMPLE_RATE - time.monotonic()))
            yield x
        yield resampler.flush()


class Sender:
    def __init__(self, broker: BrokerConfig, channel: str, node: str, encoder: SpeechEncoder,
                 qos: int = 0, backlog: int = 64) -> None:
        # MQTT 5 where the broker has it: its acknowledgements say when the broker refuses a publish.
        self.broker, self.encoder, self.qos = dataclasses.replace(broker, protocol=5), encoder, qos
        self.audio_topic = topic(channel, node, "audio")
        # The rate holds on the MQTT link: each frame's budget pays its PUBLISH framing, the whole
        # topic name until a broker that grants topic aliases is connected (the embedded broker
        # and MQTT 3.1.1 brokers grant none).
        encoder.framing_bytes = publish_overhead(self.audio_topic, qos, 5)
        self.meta_topic = topic(channel, node, "meta")
        self.status_topic = topic(channel, node, "status")
        self.outbox: collections.deque[bytes] = collections.deque()
        self.backlog = backlog
        self.stats = SenderStats()
        self._wake = asyncio.Event()
        self._started = asyncio.Event()  # the encoder has its start time, which the meta message carries
        self._done = False
        self._unbudgeted_bits = 0  # framing beyond what the encoder's budget paid (an alias set up): later frames pay it

    def _enqueue(self, packets: list[bytes]) -> None:
        for p in packets:
            if len(self.outbox) >= self.backlog:
                self.outbox.popleft()
                self.stats.dropped += 1
            self.outbox.append(p)
            self.stats.frames += 1
            self.stats.iterations = self.encoder.last_iterations
        if packets:
            self._wake.set()

    async def run(self, source: AsyncIterator[np.ndarray]) -> SenderStats:
        await asyncio.to_thread(warm_up, self.encoder.model, decode=False, denoise=self.encoder.denoise)
        publisher = asyncio.create_task(self._publish_forever())
        try:
            async for chunk in source:
                if publisher.done():  # the broker refused us for good: stop reading audio
                    publisher.result()
                self._settle()
                self._enqueue(await asyncio.to_thread(self.encoder.push, chunk))
                self._started.set()
            self._started.set()
            self._settle()
            self._enqueue(await asyncio.to_thread(self.encoder.flush))
            self._done = True
            self._wake.set()
            await publisher
        finally:
            publisher.cancel()
            # Close the source here, however the run ends: an audio file left to the garbage
            # collector could be closed from any thread, and libsoundfile's close is not thread-safe.
            if hasattr(source, "aclose"):
                await source.aclose()
        return self.stats

    def _settle(self) -> None:
        """Charge the encoder's bit bank for framing its budget did not foresee: the topic name the
        first PUBLISH of each connection carries to set up the alias. Done between encoder calls
        (the bank is the encoder thread's while it codes), so the next frames pay it back."""
        self.encoder.bank.spend(0, self._unbudgeted_bits)
        self._unbudgeted_bits = 0

    def _count(self, packet: bytes, framing: int) -> None:
        self._unbudgeted_bits += 8 * max(0, framing - self.encoder.framing_bytes)
        p = parse_speech_packet(packet)
        self.stats.payload_bits += 8 * len(p.payload)
        self.stats.packet_bits += 8 * len(packet)
        self.stats.wire_bits += 8 * (len(packet) + framing)
        self.stats.silent += p.kind == TYPE_COMFORT

    async def _publish_forever(self) -> None:
        will = aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True)
        await self._started.wait()
        retry = Retry(self.broker)
        while True:
            try:
                async with self.broker.client(will=will) as client:
                    retry.connected()
                    self.encoder.framing_bytes = (publish_overhead("", self.qos, 5, alias=True) if client.alias_maximum
                                                  else publish_overhead(self.audio_topic, self.qos, 5))
                    meta = StreamMeta(self.encoder.model.model_id, self.encoder.stream_id, self.encoder.start_time_us or 0,
                                      uplink_framing=self.encoder.framing_bytes)
                    await client.publish(self.meta_topic, meta.payload(), qos=1, retain=True)
                    if client.refused:
                        raise BrokerError(f"{self.broker.describe()} refused this node's publishes on {self.meta_topic} "
                                          f"({client.last_refusal}): check that --channel and --node are what the "
                                          "broker's ACL allows this user (e.g. --node equal to --username)")
                    await client.publish(self.status_topic, b"online", qos=1, retain=True)
                    try:
                        await self._publish_outbox(client)
                        return
                    except asyncio.CancelledError:  # stopped (Ctrl-C, SIGTERM): a clean disconnect sends no will
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(client.publish(self.status_topic, b"offline", qos=1, retain=True), 2)
                        raise
            except (aiomqtt.MqttError, OSError) as exc:
                self.stats.reconnects += 1
                await retry.failed(exc)

    async def _publish_outbox(self, client) -> None:
        """Publish packets as the encoder queues them; at the end, the status "offline"."""
        while True:
            while self.outbox:
                packet = self.outbox[0]
                refused = client.refused
                framing = await client.publish_stream(self.audio_topic, packet, qos=self.qos)
                self.outbox.popleft()  # only once the broker has it (or it left, QoS 0)
                if client.refused > refused:
                    self.stats.denied += 1
                    log.warning("the broker refused a frame (%s); %d so far", client.last_refusal,
                                self.stats.denied)
                    continue
                self.stats.sent += 1
                self._count(packet, framing)
            if self._done:
                await client.publish(self.status_topic, b"offline", qos=1, retain=True)
                return
            self._wake.clear()
            await self._wake.wait()

