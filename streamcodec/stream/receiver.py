"""Receiver: MQTT -> per-stream jitter buffer -> decode worker -> sink (and a packet archive).

One receiver follows one node or every node of a channel ("+"). A node's retained meta message
names its model, stream id and start time; each (node, stream id) gets its own jitter buffer,
decoder and sink, so a server can decode many nodes at once.

Everything from the network is hostile. Handling a message is cheap and never blocks on decoding:
packets are parsed, checked and queued; decoder threads (`workers`, each decoding one stream at a
time) take the queued frames of all streams oldest first, one frame of a stream at a time, so a
busy stream cannot starve the others; streams with a few frames decoded come before new ones, and new
ones wait while messages pour in (over 500 a second). Established streams' audio also comes on a
second connection that subscribes to their topics alone, so a flood queued at the broker ahead of
their frames on the main connection cannot delay them (the first copy of a frame counts; the
other is dropped and counted apart from network duplicates, and the archive keeps each frame
once). State is
bounded (`Limits`): streams in all and per node, new streams per second, nodes remembered;
what is refused is counted by reason, logged at most every 10 s per reason, and shown in the
status line. A failure of one stream (its file cannot be created or written, its decoder raises)
ends that stream only. When decoding falls behind, live (QoS 0) frames that waited longer than
`max_delay` are written as silence and counted instead of queueing without end. Before that the
decoder gives up phase refinement (Griffin-Lim, a large part of a frame's cost): fewer iterations
as its threads fill up (`REFINEMENT`), none for a frame that waited past `refine_delay`, and
where the model ships a large receiver decoder, the same frames fall back to the small one
(`LARGE_DECODER_LOAD`; the status line says which ran last); with QoS 1 every frame is decoded and
the status line says how far behind the receiver is.

Recordings are never overwritten: a stream that resumes after its idle timeout, or after a
receiver restart, appends to its files (stream/recording.py).
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
import functools
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiomqtt
import numpy as np

from streamcodec.bitstream.speech import SpeechPacket, parse_speech_packet, unwrap_sequence
from streamcodec.defaults import SPEECH_GRIFFIN_LIM
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.errors import BitstreamError
from streamcodec.speech import SpeechDecoder
from streamcodec.speech.codec import warm_up
from streamcodec.speech.model import resolve_model
from streamcodec.stream.jitter import FRAME_SECONDS, JitterBuffer
from streamcodec.stream.limits import Limits
from streamcodec.stream.mqtt import BrokerConfig, Retry, StreamMeta, parse_meta, parse_topic, publish_overhead, topic
from streamcodec.stream.recording import Buffered, PacketArchive, WavRecorder, safe_name

log = logging.getLogger("streamcodec.receiver")
# Griffin-Lim iterations by how busy the decoder threads were lately (busy fraction below the
# bound): what a receiver near its capacity gives up first (benchmarks/results/decoder.md).
REFINEMENT = ((0.5, SPEECH_GRIFFIN_LIM), (0.7, 4))  # busier than 0.7: none
LARGE_DECODER_LOAD = 0.5  # busier than this, or a frame that waited past refine_delay: the small decoder
MAIN, PRIORITY = 0, 1  # the receiver's connections: everything, and established streams' audio
ESTABLISHED = 3  # decoded frames after which a stream's frames are decoded before new streams'
WAIT_SECONDS = 3.0  # a new stream held back by the new-stream allowance waits this long for its next packet
WAIT_PACKETS = 8  # packets held for each waiting stream (the newest; it is let in long before it sends 8)
STALE_SECONDS = 1.5  # a new stream silent this long after its one packet gives up its slot when all are taken
FLOOD_RATE = 500  # messages a second above which new streams wait for the network to calm down


class Refusals:
    """What the receiver refused, counted by reason (a fixed set), logged the first time and then at
    most every `every` seconds per reason, so a flood cannot flood the log as well."""

    def __init__(self, every: float = 10.0) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.every = every
        self._logged: dict[str, float] = {}

    def add(self, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        now = time.monotonic()
        if now - self._logged.get(reason, -self.every) >= self.every:
            self._logged[reason] = now
            log.warning("refused: %s (%d so far)%s", reason, self.counts[reason], f": {detail}" if detail else "")

    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        return ", ".join(f"{reason} {n}" for reason, n in self.counts.most_common())


@dataclass
class StreamState:
    node: str
    stream_id: int
    decoder: SpeechDecoder | None
    sink: object
    meta: StreamMeta | None = None  # what the stream started with: a meta that changes it is refused
    archive: PacketArchive | Buffered | None = None
    clock0: float | None = None  # wall time at which frame 0 was captured, by its meta (or its first packet)
    skew: float = 0.0  # how far ahead of that clock its first packet was (a sender's clock running fast)
    unproven_files: int = 0  # files it created that count against the cap until it is established
    jitter: JitterBuffer = field(default_factory=JitterBuffer)
    start_us: int = 0  # capture time of the stream's first sample (from its meta message)
    newest: int | None = None  # highest unwrapped sequence number seen
    queue: collections.deque = field(default_factory=collections.deque)  # (seq, packet | None, due) to decode
    arrived: dict = field(default_factory=dict)  # seq -> arrival time, for packets not yet decoded
    packet_bytes: int = 0
    payload_bytes: int = 0
    wire_bytes: int = 0  # packets and the MQTT PUBLISH framing of the sender's link (as its meta says)
    frames: int = 0
    concealed: int = 0
    shed: int = 0  # frames dropped (written as silence) because the receiver fell behind
    copies: int = 0  # frames that came on both connections, the later copy dropped
    seen: dict = field(default_factory=dict)  # seq -> connection it first came on (recent frames)
    latency: float = 0.0  # seconds from capture to decoded, latest frame
    behind: float = 0.0  # seconds the latest frame waited for the decoder
    last_seen: float = field(default_factory=time.monotonic)
    ending: bool = False
    closed: bool = False
    decoding: bool = False  # a decoder thread is working on it now (it cannot be evicted meanwhile)
    error: str = ""
    written: int = 0  # samples in the sink (a resumed recording starts with what it already holds)
    origin: tuple[int, int] | None = None  # (sequence, sample in the sink where that frame starts)
    resume_from: int | None = None  # next sequence of this stream's earlier part, when it resumes
    end_sample: int | None = None  # where the stream ends in the sink, once its LAST frame is decoded
    next_seq: int | None = None  # the frame after the last one through the decoder

    def position(self, seq: int) -> int:
        """Where frame `seq` starts in the sink."""
        return self.origin[1] + (seq - self.origin[0]) * BLOCK_SAMPLES

    def write(self, audio: np.ndarray) -> None:
        """To the sink, cut at the stream's end (the tail of a short last frame is padding)."""
        if self.end_sample is not None:
            audio = audio[: max(0, self.end_sample - self.written)]
        if len(audio):
            self.written += len(audio)
            self.sink.write(audio)

    def line(self) -> str:
        s = self.jitter.stats
        seconds = max(s.received * BLOCK_SAMPLES / SAMPLE_RATE, 1e-9)
        kbps = lambda n_bytes: 8 * n_bytes / seconds / 1000  # noqa: E731
        # a sender of a file faster than real time (--fast) is ahead of its own capture clock
        latency = (f"latency {self.latency:.2f} s" if self.latency >= 0
                   else f"{-self.latency:.2f} s ahead of real time")
        return (f"{self.node}/{self.stream_id:08x}: frames {self.frames} lost {self.concealed} "
                f"late {s.late} dup {s.duplicates} shed {self.shed} {latency} "
                f"{kbps(self.packet_bytes):.2f} kbps (payload {kbps(self.payload_bytes):.2f}, "
                f"with MQTT {kbps(self.wire_bytes):.2f})" + (f" FAILED: {self.error}" if self.error else ""))


class _Lru(collections.OrderedDict):
    """A dict that forgets its least recently set entries beyond `cap`."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.cap:
            self.popitem(last=False)


def shard_of(node: str, stream_id: int, shards: int) -> int:
    """Which of `shards` receivers takes a stream: a stable hash of node and stream id, the same in
    every process and release, so all frames of a stream go to one receiver."""
    return zlib.crc32(f"{node}/{stream_id:08x}".encode()) % shards


class _Bucket:
    """A token bucket: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def has_token(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens >= 1

    def take(self) -> None:
        self.tokens -= 1


class Receiver:
    def __init__(self, broker: BrokerConfig, channel: str, node: str = "+", model=None,
                 sink_factory: Callable[[str, int], object] | None = None, out_dir: Path | None = None,
                 qos: int = 0, jitter_depth: int = 2, idle_timeout: float = 5.0, limits: Limits | None = None,
                 client_id: str | None = None, shard: tuple[int, int] = (0, 1), workers: int = 1) -> None:
        # MQTT 3.1.1: paho parses the MQTT 5 properties of every message it reads (a quarter of the
        # cost of reading one, which bounds how fast a flood is read), and a receiver needs no MQTT 5.
        self.broker, self.qos = dataclasses.replace(broker, protocol=4), qos
        self.channel = channel
        self.subscriptions = [topic(channel, node, "audio"), topic(channel, node, "meta")]
        self.workers = workers  # decoder threads: streams decoded at once (BLAS at 1 thread each)
        self.shard = shard  # (k, n): this receiver takes the streams whose shard_of() is k
        # QoS 1 is store-and-forward: a fixed client id and a persistent session, so that the broker
        # keeps the frames that arrive while this receiver is down.
        suffix = f"-{shard[0]}of{shard[1]}" if shard[1] > 1 else ""
        self.client_id = client_id or (
            f"streamcodec-recv-{channel}-{'all' if node == '+' else node}{suffix}" if qos else None)
        self.model = resolve_model(model)
        self.limits = limits or Limits()
        self.metas: _Lru = _Lru(self.limits.max_nodes)
        self.out_dir = None if sink_factory else Path(out_dir or ".")
        self.sink_factory = sink_factory or (lambda n, sid: WavRecorder(self.out_dir / f"{safe_name(n)}-{sid:08x}.wav"))
        self.jitter_depth = jitter_depth
        self.idle_timeout = idle_timeout
        self.streams: dict[tuple[str, int], StreamState] = {}
        self.finished: collections.deque[StreamState] = collections.deque(maxlen=256)  # the latest, resources freed
        self.finished_count = 0
        self.refused = Refusals()
        self.reconnects = 0
        self._retry: Retry | None = None  # the main connection's: the status line says when the broker is lost
        self._resume = _Lru(4 * self.limits.max_nodes)  # (node, stream id) -> next sequence of a closed stream
        self._blocked = _Lru(4096)  # (node, stream id) -> until when a failed stream stays refused
        self._pending: _Lru = _Lru(64)  # node -> deque of (arrival, topic, payload) waiting for a meta message
        self._ended = _Lru(4 * self.limits.max_nodes)  # streams closed after their LAST frame: they stay closed
        # new streams that found the new-stream allowance spent: key -> deque of (arrival, topic, payload, via);
        # admitted by the tick, those with the most packets first (a real stream keeps sending, a fake
        # one of a flood sends one or two)
        self._waiting: dict[tuple[str, int], collections.deque] = {}
        self._admitting: tuple[str, int] | None = None  # the waiting stream being let in
        self._unproven_files = 0  # files of streams not (yet) established, open or closed
        self.unrecorded = 0  # short streams not recorded because the file cap was reached
        self._new_streams = _Bucket(self.limits.new_streams_per_second, self.limits.new_stream_burst)
        self._node_tokens = _Lru(self.limits.max_nodes)  # node -> its _Bucket of new streams
        self._work = asyncio.Event()
        self._finished_event = asyncio.Event()
        self._window = [0.0, 0, 0]  # (start, messages so far, messages in the previous 0.1 s)
        self._established = asyncio.Event()  # the set of established streams changed
        self._busy = 0.0  # seconds the decoder threads have worked, all told
        self.load = 0.0  # their busy fraction lately (smoothed), which sets the refinement
        self.last_decoder = ""  # which decoder made the latest frame ("large" or "small")
        self.subscribed = asyncio.Event()  # set once connected and subscribed (what arrives later is heard)

    @property
    def rejected(self) -> int:
        return self.refused.total()

    # ---- running -------------------------------------------------------------------------------

    async def run(self, stop_after_streams: int | None = None) -> list[StreamState]:
        """Receive until cancelled, or until `stop_after_streams` streams have ended. A lost
        connection is retried with backoff; a connection that cannot work raises BrokerError."""
        # Decoder threads of its own (not asyncio's shared pool, whose threads come and go).
        self._decoder = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="streamcodec-decoder")
        await asyncio.get_running_loop().run_in_executor(self._decoder, functools.partial(warm_up, self.model, encode=False))
        helpers = [asyncio.create_task(self._tick_forever()), asyncio.create_task(self._decode_forever()),
                   asyncio.create_task(self._priority_forever())]
        connection = asyncio.create_task(self._connect_forever())
        try:
            while stop_after_streams is None or self.finished_count < stop_after_streams:
                self._finished_event.clear()
                waiter = asyncio.create_task(self._finished_event.wait())
                await asyncio.wait({waiter, connection, *helpers}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                for task in (connection, *helpers):
                    if task.done():
                        task.result()  # a BrokerError (or a bug) ends the receiver, loudly
            return list(self.finished)
        finally:
            for task in (connection, *helpers):
                task.cancel()
            for state in list(self.streams.values()):  # recordings are valid as they are; free the files
                self._close(state)
            self._decoder.shutdown(wait=False, cancel_futures=True)

    async def _connect_forever(self) -> None:
        self._retry = retry = Retry(self.broker)
        while True:
            try:
                async with self.broker.client(self.client_id, persistent=self.client_id is not None) as client:
                    for name in self.subscriptions:
                        await client.subscribe(name, qos=self.qos)
                    retry.connected()
                    if not self.subscribed.is_set():
                        log.info("listening on %s to %s", self.broker.describe(), self.subscriptions[0])
                    self.subscribed.set()
                    await self._read(client, MAIN)
            except (aiomqtt.MqttError, OSError) as exc:
                self.reconnects += 1
                await retry.failed(exc)

    async def _read(self, client, via: int) -> None:
        async for message in client.messages:
            await self.handle(str(message.topic), bytes(message.payload), via)
            # Yield between messages: a backlog on one connection (a flood) would otherwise be
            # handled in one go while the other connection's frames and the decoder scheduling wait.
            await asyncio.sleep(0)

    async def _priority_forever(self) -> None:
        """A second connection subscribed to the audio topics of the established streams only: the
        broker queues messages per connection, so theirs do not wait behind a flood on the main one."""
        retry = Retry(self.broker, announce=False)
        while True:
            try:
                async with self.broker.client() as client:
                    retry.connected()
                    reader = asyncio.create_task(self._read(client, PRIORITY))
                    subscribed: set[str] = set()
                    try:
                        while not reader.done():
                            self._established.clear()
                            wanted = {topic(self.channel, s.node, "audio") for s in list(self.streams.values())
                                      if s.frames >= ESTABLISHED and not s.closed}
                            for name in wanted - subscribed:
                                await client.subscribe(name, qos=self.qos)
                            for name in subscribed - wanted:
                                await client.unsubscribe(name)
                            subscribed = wanted
                            changed = asyncio.create_task(self._established.wait())
                            await asyncio.wait({reader, changed}, return_when=asyncio.FIRST_COMPLETED)
                            changed.cancel()
                        reader.result()
                    finally:
                        reader.cancel()
            except (aiomqtt.MqttError, OSError) as exc:
                await retry.failed(exc)

    # ---- network input: cheap, never blocks on decoding ------------------------------------------

    async def handle(self, name: str, payload: bytes, via: int = MAIN) -> None:
        """One message from the broker, on the main connection or the established streams' one."""
        now = time.monotonic()
        if now - self._window[0] >= 0.1:  # messages per 0.1 s, for the decode scheduling
            self._window = [now, 0, self._window[1] if now - self._window[0] < 0.2 else 0]
        self._window[1] += 1
        parsed = parse_topic(name)
        if parsed is None or parsed[2] not in ("meta", "audio"):
            self.refused.add("malformed topic", repr(name[:80]))
            return
        node, kind = parsed[1], parsed[2]
        try:
            if kind == "meta":
                await self._meta(node, payload)
            else:
                self._audio(name, node, payload, time.monotonic(), via)
        except Exception as exc:  # noqa: BLE001 - a bug: logged and counted, and the receiver goes on
            log.exception("handling a message on %r failed", name[:120])
            self.refused.add("message handling failed", f"{type(exc).__name__}: {exc}")

    def _audio(self, name: str, node: str, payload: bytes, arrival: float, via: int = MAIN) -> None:
        try:
            packet = parse_speech_packet(payload)
        except BitstreamError as exc:
            self.refused.add("malformed packet", str(exc))
            return
        meta = self.metas.get(node)
        if meta is None:  # its meta message may be on its way (a persistent session replays packets first)
            self._hold(node, (arrival, name, payload, via))
            return
        if not self.model.decodes(meta.model_id):
            self.refused.add("another model", f"node {node[:80]!r} sends model {meta.model_id.hex()}")
            return
        key = (node, meta.stream_id)
        if self.shard[1] > 1 and shard_of(node, meta.stream_id, self.shard[1]) != self.shard[0]:
            return  # another receiver's stream
        if key in self._ended:
            self.refused.add("frame of an ended stream", f"{node[:80]!r}/{meta.stream_id:08x}")
            return
        state = self.streams.get(key)
        if state is None:
            resume = self._resume.get(key)
            if resume is not None and unwrap_sequence(packet.sequence, resume) < resume:
                self.refused.add("frame of an ended stream", f"{node[:80]!r}/{meta.stream_id:08x}: a late copy")
                return
            if key != self._admitting and (key in self._waiting or (self._waiting and key not in self._resume)):
                self._wait(key, (arrival, name, payload, via))  # behind the streams already waiting
                return
            state = self._open(key, meta, (arrival, name, payload, via))
            if state is None:
                return
        try:
            self._accept(state, name, payload, packet, arrival, via)
        except Exception as exc:  # noqa: BLE001 - a bug in one stream's handling ends that stream only
            log.exception("stream %s/%08x failed", node[:80], meta.stream_id)
            state.error = state.error or f"{type(exc).__name__}: {exc}"
            self._close(state)

    def _accept(self, state: StreamState, name: str, payload: bytes, packet: SpeechPacket, arrival: float,
                via: int) -> None:
        """A packet of a stream that is open: checked against the stream's clock, then into its
        jitter buffer, its rates and its archive."""
        now = time.time()
        if state.newest is None:  # joining a stream: expect the frame its start time says is due
            state.resume_from = self._resume.pop((state.node, state.stream_id), None)
            elapsed = now - state.start_us / 1e6
            reference = state.resume_from if state.resume_from is not None else \
                int(elapsed / FRAME_SECONDS) if state.start_us else packet.sequence
        else:
            reference = state.newest
        seq = max(0, unwrap_sequence(packet.sequence, reference))
        # A frame cannot arrive before it was captured: one far ahead of the stream's clock is forged
        # (or its sender's clock is badly off), and accepting it would fill the recording with
        # concealed frames up to it. A sender that hurries a recorded file is ahead too, but its
        # frames follow one another: ahead of the clock, a packet may leave no gap longer than the
        # jitter buffer's depth, so concealment stays bounded by the packets that came.
        if state.clock0 is None:
            state.clock0 = state.start_us / 1e6 if state.start_us else now - (seq + 1) * FRAME_SECONDS
        ahead = state.clock0 + seq * FRAME_SECONDS - now
        if state.newest is None:
            if ahead > self.limits.max_clock_skew:
                self.refused.add("packet ahead of its stream's clock", f"{state.node[:80]!r}: {ahead:.0f} s")
                return
            state.skew = max(0.0, ahead)
        elif ahead > state.skew + self.limits.max_ahead and seq > state.newest + self.jitter_depth + 1:
            self.refused.add("packet ahead of its stream's clock", f"{state.node[:80]!r}: {ahead:.0f} s")
            return
        state.newest = seq if state.newest is None else max(state.newest, seq)
        state.last_seen = arrival
        first_via = state.seen.setdefault(seq, via)
        if first_via != via:  # the same frame on the other connection: not a network duplicate
            state.copies += 1
            return
        if len(state.seen) > 4 * self.limits.max_gap:
            del state.seen[next(iter(state.seen))]
        duplicates = state.jitter.stats.duplicates
        if state.jitter.insert(packet, seq):
            if len(state.arrived) > 4 * self.limits.max_gap:  # stale entries of a restarted timeline
                state.arrived.clear()
            state.arrived[seq] = arrival
        elif state.jitter.stats.duplicates > duplicates:
            return  # counted by the jitter buffer; archived and counted in the rates once
        state.packet_bytes += len(payload)
        state.payload_bytes += len(packet.payload)
        framing = state.meta.uplink_framing if state.meta and state.meta.uplink_framing is not None else \
            publish_overhead(name, self.qos, self.broker.protocol, payload=len(payload))  # an older sender: ours
        state.wire_bytes += len(payload) + framing
        if state.archive is not None:
            self._archive(state, payload)  # late frames too: a later decode of the archive has them
        self._release(state, final=False)

    def _wait(self, key: tuple[str, int], item: tuple) -> None:
        """Hold a new stream's packet until the tick can admit it; when the room is full, the oldest
        stream with a single packet makes way. The room is large enough (limits.waiting_streams) to
        keep a real stream's first packet through a flood until its second one shows it is real."""
        queue = self._waiting.get(key)
        if queue is None:
            if len(self._waiting) >= self.limits.waiting_streams:  # the oldest with one packet, if one is near
                victim = next((k for k, _ in zip(self._waiting, range(64)) if len(self._waiting[k]) == 1),
                              next(iter(self._waiting)))
                self.refused.add("too many new streams per second", f"limit {self.limits.new_streams_per_second:g}/s")
                del self._waiting[victim]
            queue = self._waiting[key] = collections.deque(maxlen=WAIT_PACKETS)
        queue.append(item)

    def _admit_waiting(self, now: float) -> None:
        """Admit waiting streams while the allowance lasts, those with the most packets first;
        forget those that sent nothing for WAIT_SECONDS (a real stream sends a frame a second)."""
        for key in [k for k, q in self._waiting.items() if now - q[-1][0] > WAIT_SECONDS]:
            self.refused.add("too many new streams per second", f"limit {self.limits.new_streams_per_second:g}/s")
            del self._waiting[key]
        for key in sorted(self._waiting, key=lambda k: (-len(self._waiting[k]), self._waiting[k][0][0])):
            if not self._new_streams.has_token(now):
                break
            queue = self._waiting.pop(key)
            self._admitting = key
            try:  # due from now: the time it waited was the receiver's, not lateness on the network
                for _, name, payload, via in queue:
                    self._audio(name, key[0], payload, now, via)
            finally:
                self._admitting = None

    def _hold(self, node: str, item: tuple) -> None:
        queue = self._pending.get(node)
        if queue is None:
            queue = collections.deque(maxlen=self.limits.pending_per_node)
            self._pending.put(node, queue)
        queue.append(item)

    def _open(self, key: tuple[str, int], meta: StreamMeta, item: tuple) -> StreamState | None:
        """A new stream's state, or None (counted) when a limit or an earlier failure refuses it;
        a stream that finds the new-stream allowance spent waits (`item` is its packet)."""
        node = key[0]
        now = time.monotonic()
        if self._blocked.get(key, 0) > now:
            self.refused.add("failed stream")
            return None
        if len(self.streams) >= self.limits.max_streams and not self._evict_stale(now):
            self.refused.add("too many streams", f"limit {self.limits.max_streams}")
            return None
        if sum(k[0] == node for k in self.streams) >= self.limits.max_streams_per_node:
            self.refused.add("too many streams from one node", f"{node[:80]!r}")
            return None
        if key not in self._resume:  # a stream resuming after its idle timeout is not new
            lim = self.limits
            bucket = self._node_tokens.get(node) or _Bucket(lim.node_new_streams_per_second, lim.node_new_stream_burst)
            self._node_tokens.put(node, bucket)
            if not bucket.has_token(now):
                self.refused.add("too many new streams from one node", f"{node[:80]!r}")
                return None
            if not self._new_streams.has_token(now):
                self._wait(key, item)
                return None
            bucket.take()
            self._new_streams.take()
        if self.out_dir is not None and self._unproven_files + 2 > self.limits.max_unproven_files:
            state = StreamState(node, meta.stream_id, SpeechDecoder(self.model), Buffered(), meta=meta,
                                jitter=JitterBuffer(self.jitter_depth, max_gap=self.limits.max_gap),
                                start_us=meta.start_us)
            state.archive = Buffered()
        else:
            state = self._with_outputs(key, meta)
            if state is None:
                return None
        self.streams[key] = state
        log.info("stream %s/%08x started -> %s", node[:80], meta.stream_id, getattr(state.sink, "path", None) or "memory until it is established")
        return state

    def _evict_stale(self, now: float) -> bool:
        """Free a slot held by a new stream that sent one packet and then nothing for STALE_SECONDS
        (a live sender sends a frame a second; a flood's fake streams send one): without this, a
        flood fills every slot and a real stream that starts during it waits for them to time out."""
        stale = [s for s in self.streams.values() if s.frames < ESTABLISHED and s.jitter.stats.received <= 1
                 and not s.decoding and now - s.last_seen > STALE_SECONDS]
        if not stale:
            return False
        victim = min(stale, key=lambda s: s.last_seen)
        self.refused.add("stale new stream evicted", f"{victim.node[:80]!r}/{victim.stream_id:08x}")
        self._close(victim)
        return True

    def _with_outputs(self, key: tuple[str, int], meta: StreamMeta) -> StreamState | None:
        """A new stream's state with its sink (and packet archive) open, or None when they cannot be."""
        try:
            sink = self.sink_factory(*key)
        except Exception as exc:  # noqa: BLE001 - a bad name, a full disk, no file descriptors left
            self._fail_key(key, f"cannot open its output: {exc}")
            return None
        state = StreamState(key[0], meta.stream_id, SpeechDecoder(self.model), sink, meta=meta,
                            jitter=JitterBuffer(self.jitter_depth, max_gap=self.limits.max_gap),
                            start_us=meta.start_us, written=getattr(sink, "samples", 0))
        if self.out_dir is not None:
            try:
                state.archive = PacketArchive(Path(sink.path).with_suffix(".scf"), meta.model_id)
            except OSError as exc:
                sink.close()
                self._fail_key(key, f"cannot open its packet archive: {exc}")
                return None
            state.unproven_files = 2
            self._unproven_files += 2
        return state

    def _prove(self, state: StreamState) -> None:
        """A stream just established: its files no longer count against the cap, and one held in
        memory gets its files now, with what it has so far (event loop only, between its frames)."""
        self._unproven_files -= state.unproven_files
        state.unproven_files = 0
        if not isinstance(state.sink, Buffered):
            return
        held, archived = state.sink, state.archive
        real = self._with_outputs((state.node, state.stream_id), state.meta)
        if real is None:
            state.error = "cannot open its output"
            return
        self._unproven_files -= real.unproven_files
        offset = real.written  # a resumed recording already holds audio: the timeline shifts by it
        state.sink, state.archive = real.sink, real.archive
        state.written = offset
        if state.origin is not None:
            state.origin = (state.origin[0], state.origin[1] + offset)
        if state.end_sample is not None:
            state.end_sample += offset
        for audio in held.audio:
            state.write(audio)
        for payload in archived.packets:
            self._archive(state, payload)

    def _fail_key(self, key: tuple[str, int], why: str) -> None:
        self._blocked.put(key, time.monotonic() + 60.0)
        self.refused.add("stream failed", f"{key[0][:80]!r}/{key[1]:08x}: {why}")

    def _archive(self, state: StreamState, payload: bytes) -> None:
        if isinstance(state.archive, Buffered):
            state.archive.packets.append(payload)
            return
        try:
            state.archive.write(payload)
        except OSError as exc:
            state.archive.close()
            state.archive = None
            self.refused.add("packet archive failed", f"{state.node[:80]!r}: {exc}")

    async def _meta(self, node: str, payload: bytes) -> None:
        """A node's meta message: remember it; a new stream id ends the node's previous stream;
        packets that arrived before it are handled now."""
        live = [s for k, s in self.streams.items() if k[0] == node and not s.ending]
        if not payload:  # a cleared retained message: the node has stopped, unless it is still sending
            if live:
                self.refused.add("meta cleared during a live stream", f"{node[:80]!r}")
            else:
                self.metas.pop(node, None)
            return
        try:
            meta = parse_meta(payload)
        except BitstreamError as exc:
            self.refused.add("malformed meta message", str(exc))
            return
        same = [s for s in live if s.stream_id == meta.stream_id]
        if same and not same[0].meta.same_stream(meta):  # a sender that changes model or format starts a new stream id
            self.refused.add("meta changes a live stream", f"{node[:80]!r}/{meta.stream_id:08x}")
            return
        old = self.metas.get(node)
        self.metas.put(node, meta)
        if old is not None and old.stream_id != meta.stream_id and (node, old.stream_id) in self.streams:
            self._release(self.streams[(node, old.stream_id)], final=True)
        waiting = self._pending.pop(node, None)
        for arrival, name, packet, via in waiting or ():
            self._audio(name, node, packet, arrival, via)

    def _release(self, state: StreamState, final: bool) -> None:
        """Move the frames the jitter buffer lets go to the decode queue."""
        now = time.monotonic()
        for seq, packet in state.jitter.pop_ready(final):
            state.queue.append((seq, packet, state.arrived.pop(seq, now)))
        if state.jitter.ended or final:
            state.ending = True
            state.arrived.clear()
        if state.queue or state.ending:
            self._work.set()

    # ---- decoding ------------------------------------------------------------------------------

    async def _decode_forever(self) -> None:
        """Decode queued frames, `workers` streams at a time in the decoder threads, the streams
        whose next frame has waited longest first (each stream's frames stay in order: one of its
        frames at a time). Which streams go next is decided again after every step, so a frame of
        an established stream that arrives meanwhile waits for one step, not for a whole round."""
        while True:
            await self._work.wait()
            self._work.clear()
            while True:
                busy = [s for s in self.streams.values() if s.queue or s.ending]
                if not busy:
                    break
                # Streams that have proven themselves (a few decoded frames) go first: a flood of new
                # streams gets only the time they leave, so it cannot delay them.
                established = [s for s in busy if s.frames >= ESTABLISHED]
                if not established and self._flooded():
                    # New streams only, while messages pour in faster than any fleet sends them: let
                    # the event loop read the network first (decoding takes the GIL from it), and
                    # decode only the new streams that keep sending (a fake stream of a flood sends
                    # a packet or two; the rest wait for the flood to end, when late frames cost
                    # nothing: shed).
                    keen = [s for s in busy if s.jitter.stats.received >= 2]
                    if not keen:
                        await asyncio.sleep(0.05)
                        continue
                    busy = keen
                busy = sorted(established or busy, key=lambda s: s.queue[0][2] if s.queue else 0.0)
                await asyncio.gather(*(self._step(state) for state in busy[: self.workers]))

    async def _step(self, state: StreamState) -> None:
        """Decode one frame of a stream, or end it once it is drained; a failure ends this stream only."""
        if state.closed:
            return
        loop = asyncio.get_running_loop()
        try:
            state.decoding = True
            if state.queue:
                established = state.frames >= ESTABLISHED
                start = time.perf_counter()
                await loop.run_in_executor(self._decoder, self._decode_one, state, *state.queue.popleft())
                self._busy += time.perf_counter() - start
                if state.frames >= ESTABLISHED and not established:
                    self._prove(state)
                    self._established.set()
            if state.ending and not state.queue and not state.closed:
                await loop.run_in_executor(self._decoder, self._flush, state)
                self._close(state)
        except Exception as exc:  # noqa: BLE001 - a bug shows in the log and ends this stream only
            log.exception("stream %s/%08x failed", state.node[:80], state.stream_id)
            state.error = state.error or f"{type(exc).__name__}: {exc}"
            self._close(state)
        finally:
            state.decoding = False

    def refinement(self, behind: float) -> int:
        """Griffin-Lim iterations for a frame that waited `behind` seconds."""
        if behind > self.limits.refine_delay:
            return 0
        return next((iters for bound, iters in REFINEMENT if self.load < bound), 0)

    def _flooded(self) -> bool:
        """More than FLOOD_RATE messages a second lately (a fleet of 64 nodes sends 64 and a few)."""
        return max(self._window[1], self._window[2]) * 10 > FLOOD_RATE and time.monotonic() - self._window[0] < 0.2

    def _decode_one(self, state: StreamState, seq: int, packet: SpeechPacket | None, due: float) -> None:
        """One frame of one stream, decoded (or concealed, or shed) and written; a failure of its
        sink ends that stream only."""
        if state.error:
            return
        if state.origin is None:
            gap = seq - state.resume_from if state.resume_from is not None else 0
            if 0 < gap <= self.limits.max_gap:  # a resumed stream: keep its timeline across the pause
                state.write(np.zeros(gap * BLOCK_SAMPLES, np.float32))
            state.origin = (seq, state.written)
        state.behind = time.monotonic() - due
        # Busy or falling behind: first give up the phase refinement, and only past max_delay drop frames.
        state.decoder.griffin_lim_iters = self.refinement(state.behind)
        state.decoder.large_decoder = self.load < LARGE_DECODER_LOAD and state.behind <= self.limits.refine_delay
        try:
            if self.qos == 0 and state.behind > self.limits.max_delay:
                audio = np.zeros(BLOCK_SAMPLES, np.float32)  # too late to matter live: keep the timeline
                state.shed += 1
            elif packet is None:
                audio = state.decoder.conceal()
                state.concealed += 1
            else:
                audio = self._decode_packet(state, seq, packet)
            if packet is not None and packet.last:  # the stream ends here: a short last frame carries fewer samples
                state.end_sample = state.position(seq) + packet.samples
            state.next_seq = seq + 1
            state.write(audio)
        except OSError as exc:
            state.error = f"cannot write its output: {exc}"
            state.ending = True
            state.queue.clear()

    def _decode_packet(self, state: StreamState, seq: int, packet: SpeechPacket) -> np.ndarray:
        try:
            audio = state.decoder.decode(packet)
        except Exception as exc:  # noqa: BLE001 - a payload whose CRC held but that does not decode
            if not isinstance(exc, BitstreamError):
                log.exception("decoder failed on %s/%08x frame %d", state.node[:80], state.stream_id, seq)
            state.concealed += 1
            return state.decoder.conceal()
        state.frames += 1
        self.last_decoder = state.decoder.last_decoder
        capture_us = state.start_us + seq * BLOCK_SAMPLES * 1_000_000 // SAMPLE_RATE
        state.latency = time.time() - capture_us / 1e6  # from the frame's first sample
        return audio

    def _flush(self, state: StreamState) -> None:
        """The decoder's last samples; a stream that may resume stops where its next frame starts."""
        if state.end_sample is None and state.next_seq is not None:
            state.end_sample = state.position(state.next_seq)
        if not state.error and state.decoder is not None:
            try:
                state.write(state.decoder.flush())
            except OSError as exc:
                state.error = f"cannot write its output: {exc}"

    def _close(self, state: StreamState) -> None:
        """End a stream: close its files, free its decoder, remember where it stopped (a later
        frame of the same stream appends to its recording)."""
        if state.closed:
            return
        state.closed = True
        for thing in (state.sink, state.archive):
            if thing is not None:
                try:
                    thing.close()
                except Exception as exc:  # noqa: BLE001 - e.g. a speaker that went away
                    state.error = state.error or f"cannot close its output: {exc}"
        key = (state.node, state.stream_id)
        self.streams.pop(key, None)
        if isinstance(state.sink, Buffered):
            self.unrecorded += 1  # never established while the file cap held: nothing was written
        if state.error:
            self._fail_key(key, state.error)
        elif state.jitter.ended:
            self._ended.put(key, True)
        elif state.next_seq is not None:
            self._resume.put(key, state.next_seq)
        state.decoder, state.queue, state.arrived = None, collections.deque(), {}
        self.finished.append(state)
        self.finished_count += 1
        self._finished_event.set()
        self._established.set()

    async def _tick_forever(self) -> None:
        """Release overdue frames, end streams that went silent for `idle_timeout`, and forget
        packets that waited too long for their meta message."""
        busy, last = self._busy, time.monotonic()
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            recent = (self._busy - busy) / (self.workers * max(now - last, 1e-3))
            self.load, busy, last = min(1.0, 0.6 * self.load + 0.4 * recent), self._busy, now
            for state in list(self.streams.values()):
                if not state.ending:
                    self._release(state, final=now - state.last_seen > self.idle_timeout)
            if self._waiting:
                self._admit_waiting(now)
            for node, queue in list(self._pending.items()):
                while queue and now - queue[0][0] > 10.0:
                    queue.popleft()
                    self.refused.add("no meta message from the node")
                if not queue:
                    self._pending.pop(node, None)

    def status(self) -> str:
        """The receiver's part of the status line: streams, refusals, how far behind it is."""
        behind = max((s.behind for s in self.streams.values()), default=0.0)
        parts = [f"streams {len(self.streams)} (ended {self.finished_count}) decoders {self.load:.0%} busy"]
        if self.model.receiver is not None and self.last_decoder:
            parts[0] += f", {self.last_decoder} decoder" + (" (load)" if self.last_decoder == "small" else "")
        if self.refused.counts:
            parts.append(f"refused {self.refused.total()} ({self.refused.summary()})")
        if self._unproven_files + 2 > self.limits.max_unproven_files:
            parts.append(f"FILE CAP reached ({self.limits.max_unproven_files} files of short streams): "
                         f"{self.unrecorded} short streams not recorded")
        if self._retry and self._retry.lost_since is not None:
            parts.append(f"BROKER LOST {time.monotonic() - self._retry.lost_since:.0f} s ago, reconnecting")
        if behind > 2 * FRAME_SECONDS:
            parts.append(f"BEHIND by {behind:.1f} s" + (" (recording every frame: QoS 1)" if self.qos else ""))
        return " ".join(parts)
