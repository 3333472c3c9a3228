"""What the `send`, `recv`, `broker` and `demo` commands run: the pieces of this package wired
together, with a status line every second through the `status` callback."""

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Callable

from streamcodec.speech import SpeechEncoder
from streamcodec.stream.mqtt import BrokerConfig
from streamcodec.stream.receiver import Receiver
from streamcodec.stream.sender import Sender, file_source

Status = Callable[[str], None]


def sample_path() -> Path:
    """The bundled speech sample (see streamcodec/data/README.md for its source and licence)."""
    return Path(str(resources.files("streamcodec.data").joinpath("sample-fr.flac")))


async def _report(status: Status | None, line: Callable[[], str]) -> None:
    while status:
        await asyncio.sleep(1.0)
        status(line())


async def send(broker: BrokerConfig, channel: str, node: str, source, encoder: SpeechEncoder, qos: int = 0,
               backlog: int = 64, status: Status | None = None):
    sender = Sender(broker, channel, node, encoder, qos, backlog)
    reporter = asyncio.create_task(_report(status, sender.stats.line))
    try:
        return await sender.run(source)
    finally:
        reporter.cancel()


async def receive(receiver: Receiver, status: Status | None = None, stop_after_streams: int | None = None):
    def line() -> str:
        states = list(receiver.streams.values())[:8] or list(receiver.finished)[-1:]
        more = len(receiver.streams) - len(states)
        return " | ".join([receiver.status(), *(s.line() for s in states)] + ([f"... {more} more"] if more > 0 else []))

    reporter = asyncio.create_task(_report(status, line))
    try:
        return await receiver.run(stop_after_streams)
    finally:
        reporter.cancel()


async def broker_forever(host: str, port: int, ready: Status | None = None) -> None:
    from streamcodec.stream.broker import start_broker  # amqtt: only where a broker is embedded

    broker = await start_broker(host, port)
    if ready:
        ready(f"broker listening on mqtt://{host}:{port} (Ctrl-C stops it)")
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def one_machine_broker(port: int):
    """A broker on 127.0.0.1:port for as long as the block runs; yields its name. Mosquitto where it
    is installed: it grants topic aliases, so the topic name crosses the link once instead of with
    every frame, and the sender keeps about 0.3 kbit/s more for payload (benchmarks/results/rate.md);
    otherwise the embedded broker (MQTT 3.1.1, no aliases)."""
    if shutil.which("mosquitto"):
        with tempfile.TemporaryDirectory() as folder:
            conf = Path(folder) / "mosquitto.conf"
            # as root, mosquitto would drop to its own user, who cannot read this folder
            conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n" +
                            ("user root\n" if os.geteuid() == 0 else ""))
            proc = await asyncio.create_subprocess_exec("mosquitto", "-c", str(conf), stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            try:
                for _ in range(100):
                    with contextlib.suppress(OSError):
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.close()
                        break
                    await asyncio.sleep(0.05)
                yield "mosquitto"
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                await proc.wait()
        return
    from streamcodec.stream.broker import start_broker  # amqtt: only where a broker is embedded

    broker = await start_broker("127.0.0.1", port)
    try:
        yield "embedded"
    finally:
        with contextlib.suppress(Exception):
            await broker.shutdown()


async def demo(out_dir: Path, model=None, fast: bool = False, iters: int | None = None,
               status: Status | None = None) -> dict:
    """A broker on this machine (one_machine_broker) + receiver + sender on the bundled sample."""
    port = free_port()
    config = BrokerConfig(port=port)
    async with one_machine_broker(port) as broker:
        receiver = Receiver(config, "demo", model=model, out_dir=out_dir)
        task = asyncio.create_task(receive(receiver, status, stop_after_streams=1))
        await asyncio.wait_for(receiver.subscribed.wait(), 30)  # the sample's first frame must be heard
        encoder = SpeechEncoder(model, **({} if iters is None else {"iters": iters}))
        start = time.monotonic()
        stats = await send(config, "demo", "sample", file_source(sample_path(), fast=fast), encoder)
        (state,) = await asyncio.wait_for(task, 30)
    seconds = max(stats.sent * 1.024, 1e-9) * 1000
    return {"frames": state.frames, "lost": state.concealed, "kbps": stats.packet_bits / seconds,
            "payload_kbps": stats.payload_bits / seconds, "mqtt_kbps": stats.wire_bits / seconds,
            "received_mqtt_kbps": 8 * state.wire_bytes / seconds,
            "latency": state.latency, "seconds": time.monotonic() - start, "wav": str(state.sink.path),
            "broker": broker}
