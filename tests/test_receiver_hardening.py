"""The receiver under hostile and unlucky conditions, against a real Mosquitto on loopback:
hostile node names, floods of stream ids, a failing output, stalls and outages longer than the
idle timeout, a receiver restart with a persistent session, kill -9, overload, connection errors."""

import asyncio
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from streamcodec.bitstream.speech import read_speech_file
from streamcodec.speech import SpeechEncoder
from streamcodec.speech.codec import decode_file
from streamcodec.speech.files import info
from streamcodec.stream.limits import Limits
from streamcodec.stream.mqtt import BrokerConfig, BrokerError, StreamMeta, topic
from streamcodec.stream.receiver import Receiver
from streamcodec.stream.recording import WavRecorder
from streamcodec.stream.sender import Sender, file_source
from tests.brokers import FLOOD, Mosquitto, free_port


@pytest.fixture(scope="module")
def packets(tiny_model, speech):
    """A three-frame message (FIRST ... LAST) and its encoder's start time."""
    encoder = SpeechEncoder(tiny_model, iters=0, stream_id=1)
    return encoder.push(speech[: 3 * 16384 - 5000]) + encoder.flush(), encoder.start_time_us


async def _publish(config, node, stream_id, start_us, model_id, frames, channel="test"):
    async with config.client() as client:
        await client.publish(topic(channel, node, "meta"), StreamMeta(model_id, stream_id, start_us).payload(),
                             qos=1, retain=True)
        for p in frames:
            await client.publish(topic(channel, node, "audio"), p, qos=1)


async def test_hostile_node_names_get_safe_distinct_file_names(tmp_path, mosquitto, tiny_model, packets):
    frames, start = packets
    out = tmp_path / "out"
    receiver = Receiver(BrokerConfig(port=mosquitto.port), "test", model=tiny_model, out_dir=out)
    task = asyncio.create_task(receiver.run(stop_after_streams=4))
    await receiver.subscribed.wait()
    names = ["n" * 300, "..", "héllo wörld", ".hidden"]
    for i, name in enumerate(names):
        await _publish(BrokerConfig(port=mosquitto.port), name, i, start, tiny_model.model_id, frames)
    finished = await asyncio.wait_for(task, 30)
    paths = {s.sink.path for s in finished}
    assert len(paths) == 4
    for path in paths:
        assert path.parent == out and not path.name.startswith(".") and len(path.name) <= 64 + 13
        assert sf.info(str(path)).frames > 0
    assert {p.with_suffix(".scf") for p in paths} == set(out.glob("*.scf"))


async def test_a_failing_output_ends_only_its_stream(tmp_path, mosquitto, tiny_model, packets):
    frames, start = packets

    def sink(node, stream_id):
        if node == "bad":
            raise OSError(24, "Too many open files")
        return WavRecorder(tmp_path / f"{node}.wav")

    config = BrokerConfig(port=mosquitto.port)
    receiver = Receiver(config, "test", model=tiny_model, sink_factory=sink)
    task = asyncio.create_task(receiver.run(stop_after_streams=1))
    await receiver.subscribed.wait()
    await _publish(config, "bad", 1, start, tiny_model.model_id, frames)
    await _publish(config, "good", 2, start, tiny_model.model_id, frames)
    (state,) = await asyncio.wait_for(task, 30)
    assert state.node == "good" and state.frames == len(frames)
    assert receiver.refused.counts["stream failed"] == 1
    assert receiver.refused.counts["failed stream"] == len(frames) - 1  # its later packets, refused cheaply


async def test_flood_of_stream_ids_is_refused_and_the_real_stream_is_intact(tmp_path, mosquitto, tiny_model,
                                                                            speech, packets):
    frames, start = packets
    wav = tmp_path / "in.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    config = BrokerConfig(port=mosquitto.port)
    out = tmp_path / "out"
    receiver = Receiver(config, "test", model=tiny_model, out_dir=out, idle_timeout=2.5)
    task = asyncio.create_task(receiver.run())
    await receiver.subscribed.wait()

    flood_script = tmp_path / "flood.py"
    flood_script.write_text(FLOOD.format(port=mosquitto.port, channel="test", model=tiny_model.model_id.hex(),
                                         start=start,
                                         packet=frames[0].hex(), seconds=0))

    async def flood():  # from another process, as an attacker would
        while not any(s.node == "legit" and s.frames >= 3 for s in receiver.streams.values()):
            await asyncio.sleep(0.1)  # once the legitimate stream is established (3 frames decoded)
        proc = await asyncio.create_subprocess_exec(sys.executable, str(flood_script))
        assert await proc.wait() == 0
        return time.monotonic()

    async def legit():  # a real-time node in its own process, as in the field
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamcodec", "send", "--file", str(wav), "--broker", f"mqtt://127.0.0.1:{mosquitto.port}",
            "--channel", "test", "--node", "legit", "--model", tiny_model.name, "--iters", "0",
            stderr=asyncio.subprocess.DEVNULL)
        assert await proc.wait() == 0

    t0 = time.monotonic()
    _, t_end = await asyncio.gather(legit(), flood())
    for _ in range(40):  # the flood's streams time out and free everything
        if not receiver.streams:
            break
        await asyncio.sleep(0.25)
    task.cancel()
    t_end = time.monotonic()  # streams held back during the flood may be let in after it, at the same rate
    legit = [s for s in receiver.finished if s.node == "legit"]  # in parts if the flood held it up > idle timeout
    assert sum(s.frames for s in legit) == -(-len(speech) // 16384) and not any(s.shed or s.concealed for s in legit)
    assert sf.info(str(legit[0].sink.path)).frames == len(speech)  # one recording, complete
    opened = len(list(out.glob("*.wav")))
    limits = receiver.limits
    assert opened <= 1 + limits.new_stream_burst + limits.new_streams_per_second * (t_end - t0 + 1)
    churned = len(list(out.glob("flood-*.wav")))  # the node that churns through stream ids
    assert churned <= limits.node_new_stream_burst + limits.node_new_streams_per_second * (t_end - t0 + 1)
    counts = receiver.refused.counts  # which limit refuses the churning node's streams depends on timing
    assert sum(counts.values()) > 2800  # all but the few the allowances let in
    assert counts["too many new streams per second"] > 1000  # mostly the 1,500 new nodes
    assert not receiver.streams and len(receiver.metas) <= limits.max_nodes


async def test_stall_longer_than_the_idle_timeout_continues_the_recording(tmp_path, mosquitto, tiny_model, speech):
    """A sender that stops for 3 s (idle timeout 1 s): the stream is closed, then resumes into the
    same files, and the WAV holds the whole input with the pause in its place."""
    wav = tmp_path / "in.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    config = BrokerConfig(port=mosquitto.port)
    out = tmp_path / "out"
    receiver = Receiver(config, "test", model=tiny_model, out_dir=out, idle_timeout=1.0)
    task = asyncio.create_task(receiver.run(stop_after_streams=2))
    await receiver.subscribed.wait()

    async def stalling():
        n = 0
        async for chunk in file_source(wav, fast=True):
            n += len(chunk)
            if n == 4 * 16384:
                await asyncio.sleep(3.0)
            await asyncio.sleep(0.01)
            yield chunk

    stats = await Sender(config, "test", "node1", SpeechEncoder(tiny_model, iters=0)).run(stalling())
    first, second = await asyncio.wait_for(task, 30)
    assert first.sink.path == second.sink.path and len(list(out.glob("*.wav"))) == 1
    assert first.frames + second.frames == stats.frames
    assert sf.info(str(first.sink.path)).frames == len(speech)  # to the sample: nothing lost, nothing doubled
    archive = read_speech_file(first.sink.path.with_suffix(".scf"))
    assert len(archive.packets) == stats.frames
    assert sum(len(a) for a, _ in decode_file(archive, tiny_model)) == len(speech)
    assert info(first.sink.path.with_suffix(".scf"))["samples"] == len(speech)


async def test_persistent_session_keeps_frames_while_the_receiver_is_down(tmp_path, mosquitto, tiny_model, speech):
    wav = tmp_path / "in.wav"
    sf.write(wav, np.tile(speech, 2), 16000, subtype="FLOAT")  # about 17 s: 17 frames
    config = BrokerConfig(port=mosquitto.port)
    out = tmp_path / "out"

    def receiver():
        return Receiver(config, "test", model=tiny_model, out_dir=out, qos=1, idle_timeout=30,
                        limits=Limits(max_delay=60))

    first = receiver()
    task = asyncio.create_task(first.run())
    await first.subscribed.wait()

    async def paced():
        async for chunk in file_source(wav, fast=True):
            await asyncio.sleep(0.05)
            yield chunk

    async def restart():
        await asyncio.sleep(2.0)
        task.cancel()  # the receiver goes down mid-stream...
        await asyncio.sleep(2.0)
        second = receiver()  # ...and comes back with the same client id
        return second, asyncio.create_task(second.run(stop_after_streams=1))

    stats, (second, task2) = await asyncio.gather(Sender(config, "test", "node1", SpeechEncoder(tiny_model, iters=0),
                                                         qos=1).run(paced()), restart())
    (state,) = await asyncio.wait_for(task2, 60)
    assert 0 < state.frames < stats.frames  # the second receiver decoded the rest...
    assert len(list(out.glob("*.wav"))) == 1  # ...into the same file
    archive = read_speech_file(state.sink.path.with_suffix(".scf"))
    assert sorted({p.sequence for p in archive.packets}) == list(range(stats.frames))  # every frame arrived


async def test_a_receiver_killed_with_sigkill_leaves_valid_files_and_its_successor_appends(tmp_path, mosquitto,
                                                                                           tiny_model, speech):
    wav = tmp_path / "in.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")  # about 9 s: 9 frames
    out = tmp_path / "out"

    async def receiver():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamcodec", "recv", "--out", str(out), "--channel", "test", "--qos", "1",
            "--broker", f"mqtt://127.0.0.1:{mosquitto.port}", "--model", tiny_model.name, stderr=asyncio.subprocess.PIPE)
        while b"listening on" not in await asyncio.wait_for(proc.stderr.readline(), 60):
            pass
        return proc

    async def paced():
        async for chunk in file_source(wav, fast=True):
            await asyncio.sleep(0.03)
            yield chunk

    first = await receiver()

    async def kill_and_restart():
        recording = out / "node1-00000009.wav"
        while not recording.exists() or sf.info(str(recording)).frames < 3 * 16384:
            await asyncio.sleep(0.1)
        first.kill()  # SIGKILL: no chance to close anything
        await first.wait()
        kept = sf.read(recording, dtype="float32")[0]  # a valid WAV, as it was at the kill
        archive = read_speech_file(recording.with_suffix(".scf"))
        assert len(kept) >= 3 * 16384 and len(archive.packets) >= 3 and not archive.damage
        return kept, await receiver()

    stats, (kept, second) = await asyncio.gather(
        Sender(BrokerConfig(port=mosquitto.port), "test", "node1", SpeechEncoder(tiny_model, iters=0, stream_id=9),
               qos=1).run(paced()), kill_and_restart())
    await asyncio.sleep(6.0)  # the second receiver closes the stream (LAST frame, or its idle timeout)
    second.send_signal(signal.SIGINT)
    await second.wait()
    (recording,) = out.glob("*.wav")
    audio = sf.read(recording, dtype="float32")[0]
    assert len(audio) > len(kept)  # the successor appended...
    np.testing.assert_array_equal(audio[: len(kept)], kept)  # ...and kept what was there
    archive = read_speech_file(recording.with_suffix(".scf"))  # at most the frame in flight at the kill is lost
    assert len(set(range(stats.frames)) - {p.sequence for p in archive.packets}) <= 1


def test_wav_recorder_repairs_a_header_left_stale(tmp_path):
    """A kill between writing samples and updating the header: the next recorder counts the
    samples from the file size, fixes the header and appends."""
    path = tmp_path / "rec.wav"
    w = WavRecorder(path)
    w.write(np.full(1000, 0.25, np.float32))
    w.close()
    with open(path, "ab") as f:
        f.write(b"\x00\x10" * 500 + b"\x01")  # 500 samples the header does not count, and half a sample
    w = WavRecorder(path)
    assert w.path == path and w.samples == 1500
    w.write(np.zeros(100, np.float32))
    w.close()
    assert sf.info(str(path)).frames == 1600


def test_a_foreign_file_is_never_overwritten(tmp_path):
    foreign = tmp_path / "node-00000001.wav"
    sf.write(foreign, np.zeros(10, np.float32), 48000)  # not a 16 kHz recording of ours
    before = foreign.read_bytes()
    w = WavRecorder(foreign)
    w.write(np.zeros(5, np.float32))
    w.close()
    assert foreign.read_bytes() == before and w.path.name == "node-00000001.1.wav"


async def test_overload_sheds_late_frames_instead_of_queueing(tmp_path, mosquitto, tiny_model, speech, monkeypatch):
    """A decoder slower than the frames arrive (0.4 s a frame, frames every 0.1 s): the receiver sees
    its decoder threads busy and gives up phase refinement and the large decoder; live frames that
    waited over max_delay are dropped as silence and counted, and the timeline keeps its length."""
    from streamcodec.speech import SpeechDecoder
    from streamcodec.stream.receiver import LARGE_DECODER_LOAD, REFINEMENT

    slow = SpeechDecoder.decode
    loads, large = [], []

    def decode(self, packet):
        loads.append(receiver.load)
        large.append(self.large_decoder)
        time.sleep(0.4)
        return slow(self, packet)

    monkeypatch.setattr(SpeechDecoder, "decode", decode)
    encoder = SpeechEncoder(tiny_model, iters=0, stream_id=5)
    frames = encoder.push(np.tile(speech, 2)) + encoder.flush()
    config = BrokerConfig(port=mosquitto.port)
    receiver = Receiver(config, "test", model=tiny_model, out_dir=tmp_path, limits=Limits(max_delay=1.0))
    task = asyncio.create_task(receiver.run(stop_after_streams=1))
    await receiver.subscribed.wait()
    async with config.client() as client:
        await client.publish(topic("test", "n", "meta"),
                             StreamMeta(tiny_model.model_id, 5, encoder.start_time_us).payload(), qos=1)
        for p in frames:
            await client.publish(topic("test", "n", "audio"), p)
            await asyncio.sleep(0.1)
    (state,) = await asyncio.wait_for(task, 60)
    assert state.shed > 0 and state.frames + state.shed + state.concealed == len(frames)
    assert sf.info(str(state.sink.path)).frames == 2 * len(speech)
    assert loads[0] < 0.1 and max(loads) > REFINEMENT[-1][0]  # the threads were seen busy
    assert large[0] and not any(on for on, load in zip(large, loads) if load >= LARGE_DECODER_LOAD)
    receiver.load = max(loads)
    assert receiver.refinement(0.0) == 0 and receiver.refinement(1.0) == 0
    receiver.load = 0.0
    assert receiver.refinement(0.0) == REFINEMENT[0][1] and receiver.refinement(1.0) == 0


async def test_connections_that_cannot_work_end_with_a_clear_error(tmp_path, tiny_model):
    fast = dict(first_timeout=3.0)
    refused = BrokerConfig(port=free_port(), **fast)  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(BrokerError, match="could not connect .* within 3 s"):
        await asyncio.wait_for(Receiver(refused, "test", model=tiny_model).run(), 20)
    assert time.monotonic() - t0 < 10
    with pytest.raises(BrokerError, match="resolve"):
        await asyncio.wait_for(Receiver(BrokerConfig("no-such-host.invalid"), "test", model=tiny_model).run(), 20)
    with pytest.raises(BrokerError, match="not in the broker URL"):
        BrokerConfig.from_url("mqtt://bob:s3cret@127.0.0.1:1883")


def test_plain_mqtt_to_a_tls_port_exits_2(tmp_path):
    from tests.test_stream import _make_certs

    ca = _make_certs(tmp_path)
    tls = Mosquitto(tmp_path, f"allow_anonymous true\ncafile {ca}\ncertfile {tmp_path / 'server.crt'}\n"
                              f"keyfile {tmp_path / 'server.key'}\n").start()
    try:
        t0 = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "streamcodec", "recv", "--broker", f"mqtt://127.0.0.1:{tls.port}",
                              "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    finally:
        tls.stop()
    assert run.returncode == 2, run.stderr
    assert "mqtts://" in run.stderr and "Traceback" not in run.stderr
    assert time.monotonic() - t0 < 60


async def test_acl_recipe_keeps_nodes_to_their_names_and_the_sender_says_when_denied(tmp_path, tiny_model, speech):
    """The Mosquitto ACL recipe of docs/deploy.md: a node publishes only under its own name. A sender whose
    meta message is refused ends with a BrokerError; refused frames are counted, not reported sent."""
    (tmp_path / "passwd").write_text("node17:pw\nnode18:pw\nreceiver:pw\n")
    subprocess.run(["mosquitto_passwd", "-U", str(tmp_path / "passwd")], check=True)
    (tmp_path / "acl").write_text("pattern write streamcodec/+/%u/#\n"
                                  "user node18\ntopic deny streamcodec/test/node18/audio\n"  # node18: no audio
                                  "user receiver\ntopic read streamcodec/#\n")
    mosquitto = Mosquitto(tmp_path, f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\n"
                                    f"acl_file {tmp_path / 'acl'}\n").start()
    wav = tmp_path / "in.wav"
    sf.write(wav, speech[: 3 * 16384], 16000, subtype="FLOAT")

    def config(user):
        return BrokerConfig(port=mosquitto.port, username=user, password="pw")

    try:
        receiver = Receiver(config("receiver"), "test", model=tiny_model, out_dir=tmp_path / "out")
        task = asyncio.create_task(receiver.run(stop_after_streams=1))
        await receiver.subscribed.wait()
        stats = await Sender(config("node17"), "test", "node17", SpeechEncoder(tiny_model, iters=0), qos=1).run(
            file_source(wav, fast=True))
        (state,) = await asyncio.wait_for(task, 30)
        assert state.node == "node17" and state.frames == stats.sent == stats.frames and stats.denied == 0
        with pytest.raises(BrokerError, match="refused this node's publishes"):  # node17 posing as node1
            await Sender(config("node17"), "test", "node1", SpeechEncoder(tiny_model, iters=0)).run(
                file_source(wav, fast=True))
        stats = await Sender(config("node18"), "test", "node18", SpeechEncoder(tiny_model, iters=0), qos=1).run(
            file_source(wav, fast=True))
        assert stats.denied == stats.frames > 0 and stats.sent == 0
    finally:
        mosquitto.stop()


async def test_three_receivers_share_sixty_streams_each_recorded_once(tmp_path, mosquitto, tiny_model, speech):
    """`recv --shard K/3` in three processes against one Mosquitto: every stream recorded exactly
    once, complete."""
    from streamcodec.stream.receiver import shard_of

    n_streams, length = 60, 2 * 16384 + 3000
    streams = []
    for i in range(n_streams):
        encoder = SpeechEncoder(tiny_model, iters=0, stream_id=1000 + i)
        streams.append((f"node{i:02d}", encoder, encoder.push(speech[i * 500 : i * 500 + length]) + encoder.flush()))
    receivers = []
    for k in range(3):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamcodec", "recv", "--shard", f"{k}/3", "--out", str(tmp_path / f"r{k}"),
            "--channel", "fleet", "--broker", f"mqtt://127.0.0.1:{mosquitto.port}", "--model", tiny_model.name,
            "--max-delay", "60", stderr=asyncio.subprocess.PIPE)
        while b"listening on" not in await asyncio.wait_for(proc.stderr.readline(), 60):
            pass
        receivers.append(proc)
    try:
        async with BrokerConfig(port=mosquitto.port).client() as client:
            for node, encoder, _ in streams:
                meta = StreamMeta(tiny_model.model_id, encoder.stream_id, encoder.start_time_us)
                await client.publish(topic("fleet", node, "meta"), meta.payload(), qos=1, retain=True)
            for frame in range(3):
                for node, _, packets in streams:
                    await client.publish(topic("fleet", node, "audio"), packets[frame], qos=1)
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("r*/*.wav"))) < n_streams or any(
                sf.info(str(w)).frames < length for w in tmp_path.glob("r*/*.wav")):
            assert time.monotonic() < deadline, "not every stream was recorded in 120 s"
            await asyncio.sleep(0.5)
    finally:
        for proc in receivers:
            proc.send_signal(signal.SIGINT)
            await proc.wait()
    wavs = sorted(tmp_path.glob("r*/*.wav"))
    names = [w.name for w in wavs]
    assert len(names) == len(set(names)) == n_streams  # each stream once, in one receiver's folder
    for w in wavs:
        node, stream_id = w.stem.rsplit("-", 1)
        assert w.parent.name == f"r{shard_of(node, int(stream_id, 16), 3)}"
        assert sf.info(str(w)).frames == length  # complete, to the sample
    assert all(len(list(tmp_path.glob(f"r{k}/*.wav"))) >= 10 for k in range(3))  # the hash spreads them
