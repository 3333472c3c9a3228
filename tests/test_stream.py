"""Live streaming through real brokers (embedded amqtt and Mosquitto), with a small untrained model."""

import asyncio
import logging
import random
import re

import numpy as np
import pytest
import soundfile as sf

from streamcodec.bitstream.speech import FILE_HEADER_BYTES, SpeechPacket
from streamcodec.defaults import SPEECH_GRIFFIN_LIM
from streamcodec.speech import SpeechEncoder
from streamcodec.speech.files import decompress_file
from streamcodec.stream.broker import start_broker
from streamcodec.stream.jitter import JitterBuffer
from streamcodec.stream.mqtt import BrokerConfig, StreamMeta, publish_overhead, topic
from streamcodec.stream.limits import Limits
from streamcodec.stream.receiver import Receiver
from streamcodec.stream.sender import Sender, file_source
from tests.brokers import Mosquitto, UplinkTap, free_port


@pytest.fixture
def speech_wav(tmp_path, speech):
    path = tmp_path / "in.wav"
    sf.write(path, speech, 16000, subtype="FLOAT")
    return path


async def _send_and_receive(config, path, model, out_dir, qos=0):
    receiver = Receiver(config, "test", model=model, out_dir=out_dir, qos=qos)
    receiver.refinement = lambda behind: SPEECH_GRIFFIN_LIM  # as offline, however busy the machine is
    task = asyncio.create_task(receiver.run(stop_after_streams=1))
    await asyncio.wait_for(receiver.subscribed.wait(), 30)  # subscribed before the first packet
    sender = Sender(config, "test", "node1", SpeechEncoder(model, iters=0), qos=qos)
    stats = await sender.run(file_source(path, fast=True))
    finished = await asyncio.wait_for(task, 60)
    return stats, finished


def _offline(tmp_path, state, model):
    """The offline decode of the packets the receiver archived beside its recording (a live
    sender's budget also pays the MQTT framing, so its packets differ from a file's)."""
    decompress_file(state.sink.path.with_suffix(".scf"), tmp_path / "offline.wav", model=model)
    return sf.read(tmp_path / "offline.wav", dtype="float32")[0]


async def test_file_through_embedded_broker_equals_offline_decode(tmp_path, speech_wav, tiny_model):
    port = free_port()
    broker = await start_broker(port=port)
    try:
        stats, finished = await _send_and_receive(BrokerConfig(port=port), speech_wav, tiny_model, tmp_path / "out")
    finally:
        await broker.shutdown()
    assert stats.dropped == 0 and stats.sent == stats.frames
    (state,) = finished
    assert state.frames == stats.frames and state.concealed == 0
    streamed = sf.read(state.sink.path, dtype="float32")[0]
    offline = _offline(tmp_path, state, tiny_model)
    assert len(streamed) >= len(offline)
    np.testing.assert_array_equal(streamed[: len(offline)], offline)


async def test_sender_rate_holds_on_the_mqtt_link(tmp_path, speech_wav, tiny_model):
    """Bits on the wire, counted on the node's link itself: through Mosquitto (MQTT 5) the audio
    topic name crosses once and every later frame carries a 3-byte alias; the sender's count is
    exactly what crossed; each frame with its PUBLISH framing stays within 2,048 bits; the budget
    has paid for every byte that crossed, the topic name of the first frame included (later frames
    pay it back), so the stream stays within its kbps; the receiver gets every frame."""
    mosquitto = Mosquitto(tmp_path).start()
    tap = await UplinkTap(mosquitto.port).start()

    async def paced():  # about 3x real time: the link is up before the first frame is coded, as live
        async for chunk in file_source(speech_wav, fast=True):
            await asyncio.sleep(0.03)
            yield chunk

    try:
        config = BrokerConfig(port=tap.port)
        receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=tiny_model, out_dir=tmp_path / "out", qos=1)
        task = asyncio.create_task(receiver.run(stop_after_streams=1))
        await asyncio.wait_for(receiver.subscribed.wait(), 30)
        encoder = SpeechEncoder(tiny_model, iters=0, kbps=1.8)
        stats = await Sender(config, "test", "node1", encoder, qos=1).run(paced())
        (state,) = await asyncio.wait_for(task, 60)
    finally:
        tap.close()
        mosquitto.stop()
    audio_topic = topic("test", "node1", "audio")
    audio = [p for p in tap.publishes() if p[0] in (audio_topic, "")]
    assert [p[0] for p in audio] == [audio_topic] + [""] * (len(audio) - 1)  # aliased after the first
    assert len(audio) == stats.sent == stats.frames == state.frames
    assert all(size == len(payload) + publish_overhead(name, 1, 5, True, len(payload)) for name, payload, size in audio)
    assert all(size - len(payload) <= 11 for _, payload, size in audio[1:])  # 1 + 2 + 2 + packet id 2 + props 1 + alias 3
    assert sum(size for *_, size in audio) * 8 == stats.wire_bits
    assert max(size for *_, size in audio[1:]) * 8 <= 2048
    # the bank starts owing a file header a live stream never sends; beyond that it paid what crossed
    assert encoder.bank.spent - 8 * FILE_HEADER_BYTES >= stats.wire_bits
    seconds = len(sf.read(speech_wav)[0]) / 16000
    assert stats.wire_bits <= 1800 * seconds


async def test_sender_rate_holds_behind_a_broker_without_topic_aliases(tmp_path, speech_wav, tiny_model):
    """The embedded broker (MQTT 3.1.1) grants no alias: every audio PUBLISH carries the whole topic
    name, counted on the link, and the stream still stays within its kbps."""
    port = free_port()
    broker = await start_broker(port=port)
    tap = await UplinkTap(port).start()
    try:
        sender = Sender(BrokerConfig(port=tap.port), "test", "node1", SpeechEncoder(tiny_model, iters=0, kbps=2.0))
        stats = await sender.run(file_source(speech_wav, fast=True))
    finally:
        tap.close()
        await broker.shutdown()
    audio_topic = topic("test", "node1", "audio")
    audio = [p for p in tap.publishes() if p[0] == audio_topic]
    assert len(audio) == stats.sent == stats.frames
    assert sum(size for *_, size in audio) * 8 == stats.wire_bits
    assert all(size - len(payload) >= len(audio_topic) for _, payload, size in audio)
    seconds = len(sf.read(speech_wav)[0]) / 16000
    assert stats.wire_bits <= 2000 * seconds


async def test_established_streams_also_come_on_their_own_connection(tmp_path, speech, tiny_model):
    """Once a stream has a few frames decoded, the receiver subscribes to its audio topic on a
    second connection (a flood queued on the main one cannot delay it): its frames then arrive
    twice, the later copy is dropped (not counted as a network duplicate), and the packet archive
    holds every frame once."""
    from streamcodec.bitstream.speech import read_speech_file

    mosquitto = Mosquitto(tmp_path).start()
    path = tmp_path / "in.wav"
    sf.write(path, speech[: 16000 * 7], 16000, subtype="FLOAT")
    try:
        config = BrokerConfig(port=mosquitto.port)
        receiver = Receiver(config, "test", model=tiny_model, out_dir=tmp_path / "out")
        task = asyncio.create_task(receiver.run(stop_after_streams=1))
        await asyncio.wait_for(receiver.subscribed.wait(), 10)
        stats = await Sender(config, "test", "node1", SpeechEncoder(tiny_model, iters=0)).run(file_source(path))
        (state,) = await asyncio.wait_for(task, 60)
    finally:
        mosquitto.stop()
    assert state.frames == stats.sent and state.concealed == 0
    assert state.copies >= 1 and state.jitter.stats.duplicates == 0  # the second connection's copies
    archived = [p.sequence for p in read_speech_file(state.sink.path.with_suffix(".scf").read_bytes()).packets]
    assert sorted(archived) == list(range(stats.sent))


async def test_file_through_mosquitto_with_qos1(tmp_path, speech_wav, tiny_model):
    mosquitto = Mosquitto(tmp_path).start()
    try:
        stats, (state,) = await _send_and_receive(BrokerConfig(port=mosquitto.port), speech_wav, tiny_model,
                                                  tmp_path / "out", qos=1)
    finally:
        mosquitto.stop()
    assert state.frames == stats.frames and state.concealed == 0
    offline = _offline(tmp_path, state, tiny_model)
    np.testing.assert_array_equal(sf.read(state.sink.path, dtype="float32")[0][: len(offline)], offline)


async def test_loss_reordering_and_duplicates_keep_the_timeline(tmp_path, speech, tiny_model):
    encoder = SpeechEncoder(tiny_model, iters=0, stream_id=7)
    quiet = np.zeros(4 * 16384, np.float32)  # sent as comfort-noise frames: the timeline must not notice
    packets = encoder.push(np.concatenate([speech, quiet, speech])) + encoder.flush()  # about 22 frames
    assert encoder.silent_frames >= 3
    n = len(packets)
    rng = random.Random(3)
    lost = {3, 9}
    wire = [p for i, p in enumerate(packets) if i not in lost]
    wire[8:8] = [packets[5], packets[0]]  # a duplicate, and one that comes too late to matter
    for i in range(0, len(wire) - 1, 4):  # local reordering
        wire[i], wire[i + 1] = wire[i + 1], wire[i]
    wire.insert(4, b"\x00garbage that is no packet")
    port = free_port()
    broker = await start_broker(port=port)
    config = BrokerConfig(port=port)
    try:
        # packets come in a burst here, faster than real time: no frame may be shed for being late
        receiver = Receiver(config, "test", model=tiny_model, out_dir=tmp_path, limits=Limits(max_delay=60))
        task = asyncio.create_task(receiver.run(stop_after_streams=1))
        await asyncio.wait_for(receiver.subscribed.wait(), 30)
        async with config.client() as client:
            meta = StreamMeta(tiny_model.model_id, 7, encoder.start_time_us)
            await client.publish(topic("test", "node1", "meta"), meta.payload(), qos=1, retain=True)
            await client.publish(topic("test", "node1", "meta"), b"{not json", qos=1)  # rejected, the first stays
            for p in wire:
                await client.publish(topic("test", "node1", "audio"), p)
                await asyncio.sleep(rng.uniform(0, 0.01))
        (state,) = await asyncio.wait_for(task, 30)
    finally:
        await broker.shutdown()
    assert state.frames + state.concealed == n
    assert state.concealed == len(lost)
    assert state.jitter.stats.duplicates + state.jitter.stats.late == 2
    assert receiver.rejected == 2
    packets_kbps = float(state.line().split(" kbps (payload")[0].rsplit(" ", 1)[1])
    assert 0.05 < packets_kbps <= 2.0  # the status line reports the rate of what arrived
    assert sf.info(str(state.sink.path)).frames == 2 * len(speech) + len(quiet)  # to the sample


def _packet(seq, first=False, last=False):
    return SpeechPacket(seq % 2**16, 0, b"", first=first, last=last)


def _seqs(released):
    return [seq if p is not None else None for seq, p in released]


def test_jitter_buffer_orders_conceals_and_ends():
    jb = JitterBuffer(depth=2, clock=lambda: 0.0)
    for seq in (1, 0, 2, 2, 5, 6, 7):
        jb.insert(_packet(seq, first=seq == 0), seq)
    assert _seqs(jb.pop_ready()) == [0, 1, 2, None, None, 5, 6, 7]
    assert jb.stats.duplicates == 1 and jb.stats.lost == 2
    jb.insert(_packet(1), 1)  # released already: a duplicate, not a late frame
    jb.insert(_packet(3), 3)  # concealed already: too late
    jb.insert(_packet(8, last=True), 8)
    assert _seqs(jb.pop_ready()) == [8] and jb.ended
    assert jb.stats.late == 1 and jb.stats.duplicates == 2


def test_jitter_buffer_waits_then_gives_up_on_time():
    now = [0.0]
    jb = JitterBuffer(depth=3, clock=lambda: now[0])
    jb.insert(_packet(65535, first=True), 65535)
    jb.insert(_packet(65537), 65537)
    assert _seqs(jb.pop_ready()) == [65535]  # 65536 missing: wait
    assert jb.pop_ready() == []
    now[0] = 10.0  # overdue
    assert _seqs(jb.pop_ready()) == [None, 65537]


def test_demo_command(tmp_path, tiny_model, capsys):
    from streamcodec.cli import main as cli
    from streamcodec.stream.app import sample_path

    assert cli(["demo", "--fast", "--out", str(tmp_path), "--model", tiny_model.name]) == 0
    out = capsys.readouterr().out
    assert "decoded 13 frames (0 lost)" in out
    assert "no latency (--fast)" in out and "latency -" not in out  # frames sent before "captured"
    # the embedded broker grants no topic alias: the sender budgets the whole topic name per frame
    wire = float(re.search(r"at ([0-9.]+) kbps on the wire, MQTT framing included", out).group(1))
    assert 1.5 < wire <= 2.0
    received = float(re.search(r"the receiver counted ([0-9.]+)", out).group(1))
    assert abs(received - wire) <= 0.05  # the same link, counted at both ends (the topic once apart)
    (wav,) = tmp_path.glob("sample-*.wav")
    assert sf.info(str(wav)).frames == sf.info(str(sample_path())).frames


async def test_wrong_password_is_a_clear_error(tmp_path, speech_wav, tiny_model, monkeypatch):
    from streamcodec.stream.mqtt import BrokerError

    passwords = tmp_path / "passwd"
    passwords.write_text("alice:secret\n")
    import subprocess

    subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
    mosquitto = Mosquitto(tmp_path, f"allow_anonymous false\npassword_file {passwords}\n").start()
    monkeypatch.setenv("STREAMCODEC_MQTT_PASSWORD", "wrong")
    config = BrokerConfig.from_url(f"mqtt://alice@127.0.0.1:{mosquitto.port}")
    try:
        receiver = Receiver(config, "test", model=tiny_model, out_dir=tmp_path)
        with pytest.raises(BrokerError, match="refused the login"):
            await asyncio.wait_for(receiver.run(), 20)
    finally:
        mosquitto.stop()


async def test_broker_restart_mid_stream(tmp_path, speech, tiny_model, caplog):
    """Mosquitto stops for a second and comes back on the same port: sender and receiver
    reconnect, say so once each (the receiver's status line too, while it lasts), the stream
    resumes, and the output timeline keeps its length."""
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(speech, 3), 16000, subtype="FLOAT")  # about 27 s: 26 frames
    mosquitto = Mosquitto(tmp_path).start()
    config = BrokerConfig(port=mosquitto.port)
    receiver = Receiver(config, "test", model=tiny_model, out_dir=tmp_path / "out", idle_timeout=30)
    task = asyncio.create_task(receiver.run(stop_after_streams=1))
    await asyncio.wait_for(receiver.subscribed.wait(), 30)
    sender = Sender(config, "test", "node1", SpeechEncoder(tiny_model, iters=0))

    async def source():
        async for chunk in file_source(long, fast=True):
            await asyncio.sleep(0.02)  # about 6x real time: the stream is still going during the outage
            yield chunk

    async def outage():
        await asyncio.sleep(1.0)
        mosquitto.stop()
        await asyncio.sleep(1.0)
        lost.append(receiver.status())
        mosquitto.start()

    lost = []
    caplog.set_level(logging.WARNING, "streamcodec")
    try:
        stats, _ = await asyncio.gather(sender.run(source()), outage())
        (state,) = await asyncio.wait_for(task, 60)
    finally:
        mosquitto.stop()
    assert stats.reconnects >= 1 and receiver.reconnects >= 1
    said = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("lost the connection to") for m in said) == 2, said  # sender, receiver
    assert sum(m.startswith("reconnected to") for m in said) == 2, said
    assert "BROKER LOST" in lost[0] and "BROKER LOST" not in receiver.status()
    assert state.frames > stats.frames // 2
    assert state.frames + state.concealed == stats.frames
    assert sf.info(str(state.sink.path)).frames == 3 * len(speech)


def _make_certs(folder):
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    import subprocess

    def run(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "ext.cnf", "-out", "server.crt")
    return folder / "ca.crt"


async def test_tls_stream_and_tls_mismatch(tmp_path, speech_wav, tiny_model):
    from streamcodec.stream.mqtt import BrokerError

    ca = _make_certs(tmp_path)
    tls = Mosquitto(tmp_path, f"allow_anonymous true\ncafile {ca}\ncertfile {tmp_path / 'server.crt'}\n"
                              f"keyfile {tmp_path / 'server.key'}\n").start()
    plain = Mosquitto(tmp_path).start()
    try:
        config = BrokerConfig.from_url(f"mqtts://127.0.0.1:{tls.port}", ca_file=str(ca))
        stats, (state,) = await _send_and_receive(config, speech_wav, tiny_model, tmp_path / "out")
        assert state.frames == stats.frames and state.concealed == 0
        mismatch = BrokerConfig.from_url(f"mqtts://127.0.0.1:{plain.port}", ca_file=str(ca))
        with pytest.raises(BrokerError, match="TLS"):
            await asyncio.wait_for(Receiver(mismatch, "test", model=tiny_model).run(), 20)
        untrusted = BrokerConfig.from_url(f"mqtts://127.0.0.1:{tls.port}")  # system CAs do not know ours
        with pytest.raises(BrokerError, match="TLS"):
            await asyncio.wait_for(Receiver(untrusted, "test", model=tiny_model).run(), 20)
    finally:
        tls.stop()
        plain.stop()


def test_broker_urls():
    from streamcodec.stream.mqtt import BrokerError

    c = BrokerConfig.from_url("mqtts://bob@example.org")
    assert (c.host, c.port, c.tls, c.username) == ("example.org", 8883, True, "bob")
    assert BrokerConfig.from_url("localhost:1999").port == 1999
    for bad in ("http://x", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(BrokerError):
            BrokerConfig.from_url(bad)


async def test_a_stopped_sender_says_offline(tmp_path, speech, tiny_model):
    """Ctrl-C or SIGTERM cancels the sender: it disconnects cleanly (so the broker sends no will)
    and must set its retained status to "offline" itself."""
    mosquitto = Mosquitto(tmp_path).start()
    config = BrokerConfig(port=mosquitto.port)

    async def endless():
        while True:
            await asyncio.sleep(0.01)
            yield speech[:512]

    try:
        sender = asyncio.create_task(Sender(config, "test", "node9", SpeechEncoder(tiny_model, iters=0)).run(endless()))
        async with config.client() as client:
            await client.subscribe(topic("test", "node9", "status"))
            async for message in client.messages:
                if message.payload == b"online":
                    break
        sender.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sender
        async with config.client() as client:  # the retained status a newcomer sees
            await client.subscribe(topic("test", "node9", "status"))
            message = await asyncio.wait_for(anext(aiter(client.messages)), 10)
        assert message.payload == b"offline"
    finally:
        mosquitto.stop()
