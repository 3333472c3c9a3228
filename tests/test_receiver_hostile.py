"""What a stranger can publish to a broker without per-node ACLs, against a real Mosquitto on
loopback: odd topics and meta messages of any shape, forged sequence numbers, forged meta messages,
copies of a finished stream, floods of new streams while a real one starts, and streams that never
become real. The receiver stays up, every real stream's recording is complete, nothing is added
to a finished recording, and the files of fake streams stay under the cap."""

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf
from hypothesis import given, settings, strategies as st

from streamcodec.bitstream.speech import parse_speech_packet
from streamcodec.errors import BitstreamError
from streamcodec.speech import SpeechEncoder
from streamcodec.speech.model import load_model
from streamcodec.stream.jitter import JitterBuffer
from streamcodec.stream.limits import Limits
from streamcodec.stream.mqtt import BrokerConfig, StreamMeta, parse_meta, parse_topic, topic
from streamcodec.stream.receiver import STALE_SECONDS, Receiver
from streamcodec.stream.recording import Buffered
from tests.brokers import FLOOD

FRAME = 16384


@pytest.fixture(scope="module")
def stream(tiny_model, speech):
    """Six frames of a live stream (FIRST, no LAST) and the three-frame end of it (LAST)."""
    encoder = SpeechEncoder(tiny_model, iters=0, stream_id=7)
    packets = encoder.push(speech[: 8 * FRAME + 100]) + encoder.flush()
    return packets, encoder.start_time_us


def _forged(packet: bytes, sequence: int) -> bytes:
    """A packet with another sequence number and a valid checksum, as anyone can make one."""
    return dataclasses.replace(parse_speech_packet(packet), sequence=sequence, first=False, last=False).encode()


async def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _meta(model_id: bytes, stream_id: int, start_us: int) -> bytes:
    return StreamMeta(model_id, stream_id, start_us).payload()


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children,
                                                                                    max_size=6), max_leaves=30))
def test_meta_of_any_json_shape_is_a_meta_or_a_bitstream_error(value):
    for payload in (json.dumps(value).encode(), json.dumps({"model_id": "00112233", "format_version": 2,
                                                            "sample_rate": 16000, "stream_id": value,
                                                            "start_us": 1}).encode()):
        try:
            assert isinstance(parse_meta(payload), StreamMeta)
        except BitstreamError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1100) | st.sampled_from([b"[" * 1024, b"{" * 1000, b'{"a":' * 200, b"\xff" * 10]))
def test_meta_of_any_bytes_is_a_meta_or_a_bitstream_error(payload):
    try:
        parse_meta(payload)
    except BitstreamError:
        pass


@given(st.lists(st.text(alphabet="ab+#/ é", max_size=5), min_size=0, max_size=6))
def test_topics_with_empty_or_wildcard_segments_are_not_streams(parts):
    parsed = parse_topic("/".join(["streamcodec", *parts]))
    if parsed is not None:
        channel, node, _ = parsed
        assert topic(channel, node, "audio")  # a stream's topic can be built and subscribed to again


def test_a_deep_meta_is_refused_without_recursion():
    for payload in (b"[" * 1024, b'{"model_id":' * 60 + b"1" + b"}" * 60):
        with pytest.raises(BitstreamError, match="flat JSON object"):
            parse_meta(payload)


async def test_hostile_topics_and_metas_never_end_the_receiver_process(tmp_path, mosquitto, tiny_model, stream):
    """`streamcodec recv --out` as a user starts it; what ended it before: a stream on a topic with
    an empty node name, and a retained meta of 1 KiB of '['."""
    packets, start = stream
    out = tmp_path / "out"
    config = BrokerConfig(port=mosquitto.port)
    async with config.client() as client:  # retained before the receiver starts, as an attacker leaves it
        await client.publish("streamcodec/test/evil/meta", b"[" * 1024, qos=1, retain=True)
    proc = subprocess.Popen([sys.executable, "-m", "streamcodec", "recv", "--broker", f"mqtt://127.0.0.1:{mosquitto.port}",
                             "--channel", "test", "--model", tiny_model.name, "--out", str(out)],
                            stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.sleep(3)  # connected and subscribed
        async with config.client() as client:
            for name in ("streamcodec/test//meta", "streamcodec/test/n/other"):
                await client.publish(name, _meta(tiny_model.model_id, 1, start), qos=1)
            for p in packets[:4]:
                await client.publish("streamcodec/test//audio", p, qos=1)
            for bad in (b'{"model_id": {"x": 1}}', b"null", b'"text"', b"1e999", json.dumps([1] * 100).encode(),
                        b'{"model_id": "zz", "format_version": 2, "sample_rate": 16000, "stream_id": -1, "start_us": 1}'):
                await client.publish("streamcodec/test/odd/meta", bad, qos=1)
                await client.publish("streamcodec/test/odd/audio", packets[0], qos=1)
            await client.publish(topic("test", "real", "meta"), _meta(tiny_model.model_id, 2, start), qos=1,
                                 retain=True)
            for p in packets:
                await client.publish(topic("test", "real", "audio"), p, qos=1)
        deadline = time.monotonic() + 60
        while not list(out.glob("real-*.wav")) or sf.info(str(next(out.glob("real-*.wav")))).frames < 8 * FRAME:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        assert proc.poll() is None  # still up
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert sf.info(str(next(out.glob("real-*.wav")))).frames == 8 * FRAME + 100
    assert "malformed topic" in err and "malformed meta message" in err


async def test_a_failure_in_one_streams_handling_stays_in_that_stream(tmp_path, mosquitto, tiny_model, stream,
                                                                     monkeypatch):
    packets, start = stream
    original = JitterBuffer.insert
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=tiny_model, out_dir=tmp_path / "out")

    def insert(self, packet, sequence):
        if any(s.jitter is self and s.node == "bad" for s in receiver.streams.values()):
            raise RuntimeError("injected")
        return original(self, packet, sequence)

    monkeypatch.setattr(JitterBuffer, "insert", insert)
    task = asyncio.create_task(receiver.run(stop_after_streams=2))
    await receiver.subscribed.wait()
    async with BrokerConfig(port=mosquitto.port).client() as client:
        for node, sid in (("bad", 1), ("good", 2)):
            await client.publish(topic("test", node, "meta"), _meta(tiny_model.model_id, sid, start), qos=1)
        for p in packets:
            for node in ("bad", "good"):
                await client.publish(topic("test", node, "audio"), p, qos=1)
    finished = {s.node: s for s in await asyncio.wait_for(task, 30)}
    assert "injected" in finished["bad"].error
    assert finished["good"].frames == len(packets) and not finished["good"].error
    assert sf.info(str(finished["good"].sink.path)).frames == 8 * FRAME + 100


async def test_a_forged_sequence_far_ahead_is_refused_and_the_recording_ends_at_its_last_frame(
        tmp_path, mosquitto, tiny_model, stream):
    packets, start = stream
    live = packets[:6]  # the stream then stops without LAST (idle timeout)
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=tiny_model, out_dir=tmp_path / "out",
                        idle_timeout=1.5)
    task = asyncio.create_task(receiver.run(stop_after_streams=1))
    await receiver.subscribed.wait()
    async with BrokerConfig(port=mosquitto.port).client() as client:
        await client.publish(topic("test", "n", "meta"), _meta(tiny_model.model_id, 7, start), qos=1)
        for p in live[:3]:
            await client.publish(topic("test", "n", "audio"), p, qos=1)
        await client.publish(topic("test", "n", "audio"), _forged(live[2], 2 + 599), qos=1)
        await client.publish(topic("test", "n", "audio"), _forged(live[2], 2 + 30), qos=1)
        for p in live[3:]:
            await client.publish(topic("test", "n", "audio"), p, qos=1)
    (state,) = await asyncio.wait_for(task, 30)
    assert receiver.refused.counts["packet ahead of its stream's clock"] == 2
    assert state.frames == 6 and state.concealed == 0
    assert sf.info(str(state.sink.path)).frames == 6 * FRAME


async def test_forged_meta_messages_do_not_cut_a_live_stream(tmp_path, mosquitto, tiny_model, stream):
    packets, start = stream
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=tiny_model, out_dir=tmp_path / "out")
    task = asyncio.create_task(receiver.run(stop_after_streams=1))
    await receiver.subscribed.wait()
    meta_topic, audio = topic("test", "n", "meta"), topic("test", "n", "audio")
    async with BrokerConfig(port=mosquitto.port).client() as client:
        await client.publish(meta_topic, _meta(tiny_model.model_id, 7, start), qos=1, retain=True)
        for p in packets[:3]:
            await client.publish(audio, p, qos=1)
        await _wait_for(lambda: any(s.frames >= 2 for s in receiver.streams.values()))
        await client.publish(meta_topic, _meta(b"\xde\xad\xbe\xef", 7, start), qos=1, retain=True)  # another model
        await client.publish(meta_topic, _meta(tiny_model.model_id, 7, start + 5_000_000), qos=1)  # another start
        await client.publish(meta_topic, b"", qos=1, retain=True)  # clears the retained meta
        await asyncio.sleep(0.5)
        for p in packets[3:]:
            await client.publish(audio, p, qos=1)
    (state,) = await asyncio.wait_for(task, 30)
    assert state.frames == len(packets) and state.concealed == 0
    assert sf.info(str(state.sink.path)).frames == 8 * FRAME + 100
    assert receiver.refused.counts["meta changes a live stream"] == 2
    assert receiver.refused.counts["meta cleared during a live stream"] == 1


async def test_copies_of_a_finished_stream_never_reopen_it(tmp_path, mosquitto, tiny_model, stream):
    packets, start = stream
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=tiny_model, out_dir=tmp_path / "out")
    task = asyncio.create_task(receiver.run())
    await receiver.subscribed.wait()
    async with BrokerConfig(port=mosquitto.port).client() as client:
        await client.publish(topic("test", "n", "meta"), _meta(tiny_model.model_id, 7, start), qos=1)
        for p in packets:
            await client.publish(topic("test", "n", "audio"), p, qos=1)
        await _wait_for(lambda: receiver.finished_count == 1)
        for p in (packets[-1], packets[-1], packets[0], packets[4]):  # late copies, LAST among them
            await client.publish(topic("test", "n", "audio"), p, qos=1)
        await asyncio.sleep(2.5)
    task.cancel()
    assert receiver.finished_count == 1 and not receiver.streams
    # each of the 4 late copies refused; one may also come on the second connection before it unsubscribes
    assert receiver.refused.counts["frame of an ended stream"] >= 4
    (wav,) = (tmp_path / "out").glob("*.wav")
    assert sf.info(str(wav)).frames == 8 * FRAME + 100


async def test_files_of_streams_that_never_become_real_are_capped(tmp_path, mosquitto, tiny_model, stream):
    packets, start = stream
    out = tmp_path / "out"
    limits = Limits(max_unproven_files=4, new_stream_burst=100, new_streams_per_second=100,
                    node_new_stream_burst=100, node_new_streams_per_second=100)
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=tiny_model, out_dir=out, limits=limits,
                        idle_timeout=1.0)
    task = asyncio.create_task(receiver.run())
    await receiver.subscribed.wait()
    async with BrokerConfig(port=mosquitto.port).client() as client:
        for i in range(10):  # fake streams: a meta and one frame each
            await client.publish(topic("test", f"fake{i}", "meta"), _meta(tiny_model.model_id, i, start), qos=1)
            await client.publish(topic("test", f"fake{i}", "audio"), packets[0], qos=1)
        await _wait_for(lambda: receiver.finished_count == 10)
        assert "FILE CAP reached" in receiver.status()
        await client.publish(topic("test", "real", "meta"), _meta(tiny_model.model_id, 99, start), qos=1)
        for p in packets:
            await client.publish(topic("test", "real", "audio"), p, qos=1)
        await _wait_for(lambda: receiver.finished_count == 11)
    task.cancel()
    fake_files = [p for p in out.iterdir() if p.name.startswith("fake")]
    assert len(fake_files) <= 4 and receiver.unrecorded == 10 - len(fake_files) // 2
    (real,) = out.glob("real-*.wav")
    assert sf.info(str(real)).frames == 8 * FRAME + 100
    assert len(list(out.glob("real-*.scf"))) == 1


async def test_a_stale_new_stream_gives_up_its_slot_when_all_are_taken(tiny_model, stream):
    """With every slot taken, a new stream gets the slot of one that sent a single packet and then
    nothing for STALE_SECONDS; a stream that keeps sending is never the one evicted."""
    packets, start = stream
    receiver = Receiver(BrokerConfig(port=1), "test", model=tiny_model, sink_factory=lambda n, s: Buffered(),
                        limits=Limits(max_streams=2))

    async def send(node, packet):
        await receiver.handle(topic("test", node, "meta"), _meta(tiny_model.model_id, 1, start))
        await receiver.handle(topic("test", node, "audio"), packet)

    await send("one-packet", packets[0])
    await send("keeps-sending", packets[0])
    await send("newcomer", packets[0])  # the others are not stale yet
    assert receiver.refused.counts["too many streams"] == 1 and len(receiver.streams) == 2
    await asyncio.sleep(STALE_SECONDS / 2)
    await send("keeps-sending", packets[1])
    await asyncio.sleep(STALE_SECONDS / 2 + 0.1)
    await send("newcomer", packets[1])
    assert set(node for node, _ in receiver.streams) == {"keeps-sending", "newcomer"}
    assert receiver.refused.counts["stale new stream evicted"] == 1


@pytest.mark.slow
async def test_a_stream_that_starts_during_a_flood_keeps_its_frames(tmp_path, mosquitto, speech):
    """3,000 new fake streams (half on one node churning stream ids, half on new nodes), each with a
    real packet of the shipped model, published while a real-time node starts: the node's recording
    keeps at least 95 % of its frames. With the shipped model, decoding every fake stream's frame
    takes minutes of CPU, so a receiver that does not hold new streams back sheds the real one."""
    model = load_model()
    encoder = SpeechEncoder(model, iters=0, stream_id=5)
    packet = encoder.push(speech[: 3 * FRAME])[0]  # FIRST, not LAST: the fake stream stays open
    wav = tmp_path / "in.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    out = tmp_path / "out"
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=model, out_dir=out, idle_timeout=2.5)
    task = asyncio.create_task(receiver.run())
    await receiver.subscribed.wait()
    script = tmp_path / "flood.py"
    script.write_text(FLOOD.format(port=mosquitto.port, channel="test", model=model.model_id.hex(),
                                   start=encoder.start_time_us, packet=packet.hex(), seconds=4))
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcodec", "send", "--file", str(wav), "--broker", f"mqtt://127.0.0.1:{mosquitto.port}",
        "--channel", "test", "--node", "legit", "--iters", "0", stderr=asyncio.subprocess.DEVNULL)
    flood = await asyncio.create_subprocess_exec(sys.executable, str(script))
    assert await flood.wait() == 0 and await sender.wait() == 0
    await _wait_for(lambda: not any(s.node == "legit" for s in receiver.streams.values()), 60)
    task.cancel()
    legit = [s for s in receiver.finished if s.node == "legit"]
    frames = -(-len(speech) // FRAME)
    assert sum(s.frames for s in legit) >= 0.95 * frames and not any(s.shed for s in legit)
    assert sf.info(str(legit[0].sink.path)).frames >= len(speech) - 0.05 * frames * FRAME
    assert legit[-1].latency < 2.0  # the bar of established streams
