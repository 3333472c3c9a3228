"""Real MQTT brokers for tests and benchmarks: Mosquitto started as a process on a free loopback
port, and a flood of fake streams to throw at a receiver."""

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


# A script for another process (as an attacker would be): 3,000 fake streams, half from one node
# changing its stream id, half from new nodes, each a meta message and one real packet.
FLOOD = """
import json, paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
c.connect("127.0.0.1", {port})
c.loop_start()
for i in range(3000):  # half from one node changing its stream id, half from new nodes
    node = "flood" if i % 2 else f"f{{i}}"
    meta = dict(model_id="{model}", format_version=2, sample_rate=16000, stream_id=1000 + i, start_us={start})
    c.publish(f"streamcodec/{channel}/{{node}}/meta", json.dumps(meta))
    c.publish(f"streamcodec/{channel}/{{node}}/audio", bytes.fromhex("{packet}")).wait_for_publish()
c.disconnect()
c.loop_stop()
"""
