"""Microphone and speaker paths through ALSA virtual devices (the `file` plugin over `null`),
in a subprocess whose HOME holds the .asoundrc: PortAudio reads the ALSA configuration once."""

import subprocess
import sys
import textwrap

ASOUNDRC = """
pcm.sc_virtual {{
    type file
    slave.pcm "null"
    file "{out}"
    format "raw"
}}
"""

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import numpy as np
    from streamcodec.stream.devices import SpeakerSink, mic_source

    async def capture():
        chunks = []
        async for chunk in mic_source("sc_virtual", chunk=1024):
            chunks.append(chunk)
            if len(chunks) == 16:
                break
        return chunks

    chunks = asyncio.run(capture())
    assert all(c.shape == (1024,) and c.dtype == np.float32 for c in chunks), [c.shape for c in chunks]
    sink = SpeakerSink("sc_virtual")
    sink.write(0.5 * np.sin(np.arange(16000) / 3.0).astype(np.float32))
    sink.close()
    print("ok", len(chunks), sink.underruns)
""")


def test_microphone_and_speaker_through_alsa(tmp_path):
    out = tmp_path / "played.raw"
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(out=out))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok 16")
    assert out.stat().st_size >= 16000 * 2  # one second went out to the device


async def test_send_mic_and_recv_play_commands(tmp_path, tiny_model):
    """`streamcodec send --mic` and `streamcodec recv --play` as a user runs them, on ALSA virtual
    devices, through a Mosquitto broker; both are stopped with Ctrl-C (SIGINT)."""
    import asyncio
    import signal

    from tests.brokers import Mosquitto

    out = tmp_path / "played.raw"
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(out=out))
    mosquitto = Mosquitto(tmp_path).start()
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    common = ["--broker", f"mqtt://127.0.0.1:{mosquitto.port}", "--channel", "t", "--model", tiny_model.name,
              "--device", "sc_virtual"]
    exe = str(__import__("pathlib").Path(sys.executable).parent / "streamcodec")
    try:
        recv = await asyncio.create_subprocess_exec(exe, "recv", "--play", *common, env=env,
                                                    stderr=asyncio.subprocess.PIPE)
        await asyncio.sleep(2.0)
        send = await asyncio.create_subprocess_exec(exe, "send", "--mic", "--node", "mic1", "--iters", "1", *common,
                                                    env=env, stderr=asyncio.subprocess.PIPE)
        # Until the receiver's status line shows a few frames of the stream decoded and played
        # (no fixed sleep: on a busy machine start-up alone can take several seconds).
        seen = []

        async def frames_arrive():
            while True:
                line = (await recv.stderr.readline()).decode()
                seen.append(line)
                if "mic1/" in line and "frames 0 " not in line and "frames 1 " not in line:
                    return

        await asyncio.wait_for(frames_arrive(), 90)
        await asyncio.sleep(1.0)
        for proc in (send, recv):
            proc.send_signal(signal.SIGINT)
        send_err = (await asyncio.wait_for(send.communicate(), 30))[1].decode()
        recv_err = "".join(seen) + (await asyncio.wait_for(recv.communicate(), 30))[1].decode()
    finally:
        mosquitto.stop()
    assert "frames" in send_err and "sent" in send_err, send_err[-1000:]
    assert "mic1/" in recv_err, recv_err[-1000:] + send_err[-1000:]  # the live status line names the stream
    assert out.stat().st_size >= 16000 * 2  # decoded speech reached the (virtual) speaker
