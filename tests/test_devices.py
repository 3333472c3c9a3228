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
