"""Real MQTT brokers for tests and benchmarks: Mosquitto started as a process on a free loopback
port, a tap that counts what a client sends it, and a flood of fake streams to throw at a receiver."""

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Mosquitto:
    """`mosquitto -c conf` on a free port; extra config lines (TLS, passwords) can be given."""

    def __init__(self, folder: Path, extra: str = "", port: int | None = None) -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto not installed: run scripts/setup.sh")
        self.port = port or free_port()
        self.conf = Path(folder) / f"mosquitto-{self.port}.conf"
        # As root, mosquitto would drop to the "mosquitto" user, who cannot read pytest's tmp files.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"listener {self.port} 127.0.0.1\n{user}" + (extra or "allow_anonymous true\n"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class UplinkTap:
    """A TCP relay between clients and a broker that keeps every MQTT control packet the clients
    send (type, whole packet bytes): what a node's link really carries, framing included."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.packets: list[tuple[int, bytes]] = []
        self.port = 0

    async def start(self) -> "UplinkTap":
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def publishes(self) -> list[tuple[str, bytes, int]]:
        """(topic as sent, payload, whole PUBLISH size) of each PUBLISH, in order (properties skipped)."""
        out = []
        for kind, data in self.packets:
            if kind != 3:
                continue
            i = 1
            while data[i] & 0x80:  # remaining-length varint
                i += 1
            i += 1
            n = int.from_bytes(data[i : i + 2], "big")
            name = data[i + 2 : i + 2 + n].decode()
            j = i + 2 + n + (2 if (data[0] >> 1) & 3 else 0)
            props, k = 0, 0  # MQTT 5 properties length varint (these tests speak 5)
            while True:
                props |= (data[j + k] & 0x7F) << (7 * k)
                k += 1
                if not data[j + k - 1] & 0x80:
                    break
            out.append((name, bytes(data[j + k + props :]), len(data)))
        return out

    async def _relay(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)

        async def uplink():
            buffer = b""
            while data := await reader.read(65536):
                up_writer.write(data)
                buffer += data
                while len(buffer) >= 2:
                    length, shift, i = 0, 0, 1
                    while i < len(buffer) and buffer[i] & 0x80:
                        length |= (buffer[i] & 0x7F) << shift
                        shift, i = shift + 7, i + 1
                    if i >= len(buffer) or len(buffer) < i + 1 + (length | (buffer[i] << shift)):
                        break
                    end = i + 1 + (length | (buffer[i] << shift))
                    self.packets.append((buffer[0] >> 4, buffer[:end]))
                    buffer = buffer[end:]
            up_writer.close()

        async def downlink():
            while data := await up_reader.read(65536):
                writer.write(data)
            writer.close()

        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(uplink(), downlink())

    def close(self) -> None:
        self.server.close()


# A script for another process (as an attacker would be): 3,000 fake streams, half from one node
# changing its stream id, half from new nodes, each a meta message and one real packet, spread evenly
# over `seconds` (0: as fast as the client can).
FLOOD = """
import json, time, paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
c.connect("127.0.0.1", {port})
c.loop_start()
t0 = time.monotonic()
for i in range(3000):  # half from one node changing its stream id, half from new nodes
    node = "flood" if i % 2 else f"f{{i}}"
    meta = dict(model_id="{model}", format_version=2, sample_rate=16000, stream_id=1000 + i, start_us={start})
    c.publish(f"streamcodec/{channel}/{{node}}/meta", json.dumps(meta))
    c.publish(f"streamcodec/{channel}/{{node}}/audio", bytes.fromhex("{packet}")).wait_for_publish()
    time.sleep(max(0.0, t0 + i * {seconds} / 3000 - time.monotonic()))
c.disconnect()
c.loop_stop()
"""
