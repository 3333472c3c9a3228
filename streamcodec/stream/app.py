"""What the `send`, `recv`, `broker` and `demo` commands run: the pieces of this package wired
together, with a status line every second through the `status` callback."""

import asyncio
import contextlib
import socket
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


async def demo(out_dir: Path, model=None, fast: bool = False, iters: int | None = None,
               status: Status | None = None) -> dict:
    """Embedded broker + receiver + sender on the bundled sample, in one process."""
    from streamcodec.stream.broker import start_broker

    port = free_port()
    config = BrokerConfig(port=port)
    broker = await start_broker("127.0.0.1", port)
    try:
        receiver = Receiver(config, "demo", model=model, out_dir=out_dir)
        task = asyncio.create_task(receive(receiver, status, stop_after_streams=1))
        await asyncio.sleep(0.3)
        encoder = SpeechEncoder(model, **({} if iters is None else {"iters": iters}))
        start = time.monotonic()
        stats = await send(config, "demo", "sample", file_source(sample_path(), fast=fast), encoder)
        (state,) = await asyncio.wait_for(task, 30)
    finally:
        with contextlib.suppress(Exception):
            await broker.shutdown()
    seconds = max(stats.sent * 1.024, 1e-9) * 1000
    return {"frames": state.frames, "lost": state.concealed, "kbps": stats.packet_bits / seconds,
            "payload_kbps": stats.payload_bits / seconds, "mqtt_kbps": stats.wire_bits / seconds,
            "latency": state.latency, "seconds": time.monotonic() - start, "wav": str(state.sink.path)}
