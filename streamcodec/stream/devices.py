"""Sound devices through sounddevice (PortAudio): the microphone as an async source and the
speaker as a sink. PortAudio calls back on its own thread; audio is handed to the event loop with
call_soon_threadsafe, and to the speaker through a lock-protected buffer, never shared unguarded."""

import asyncio
import collections
import contextlib
import threading
from typing import AsyncIterator

import numpy as np

from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.errors import StreamcodecError


class DeviceError(StreamcodecError):
    """A sound device cannot be opened."""


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 missing
        raise DeviceError(f"PortAudio is not available ({exc}): install the Debian package libportaudio2") from exc
    return sounddevice


async def mic_source(device=None, chunk: int = 512, max_queued: int = 256) -> AsyncIterator[np.ndarray]:
    """16 kHz mono chunks from the microphone until cancelled. If the consumer falls behind by
    more than `max_queued` chunks, the oldest audio is dropped rather than memory growing.

    PortAudio's thread wakes the event loop at most once per batch of blocks: a device that
    delivers faster than real time (a virtual one) would otherwise fill the loop's self-pipe, and
    the byte a Ctrl-C writes there would be lost with it (the process would not stop)."""
    sd = _sounddevice()
    loop = asyncio.get_running_loop()
    blocks: collections.deque[np.ndarray] = collections.deque(maxlen=max_queued)  # appends are thread-safe
    ready = asyncio.Event()
    waking = [False]  # a wake-up is on its way to the loop

    def callback(indata, frames, time_info, status):
        blocks.append(indata[:, 0].copy())
        if not waking[0]:
            waking[0] = True
            with contextlib.suppress(RuntimeError):  # the loop closed while the stream stopped
                loop.call_soon_threadsafe(ready.set)

    try:
        stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=chunk,
                                device=device, callback=callback)
    except Exception as exc:
        raise DeviceError(f"cannot open the microphone ({exc}): pick one with --device") from exc
    with stream:
        while True:
            ready.clear()
            waking[0] = False  # after clear(): a block appended from here on wakes the loop again
            while blocks:
                yield blocks.popleft()
            await ready.wait()


PREBUFFER_SECONDS = 0.15


class SpeakerSink:
    """Plays decoded audio. Playback starts once `prebuffer` seconds are queued (and again after
    an underrun), which absorbs network jitter and the 32 ms a decoder holds back until the next
    frame arrives; an underrun plays silence instead of blocking the receiver."""

    def __init__(self, device=None, prebuffer: float = PREBUFFER_SECONDS) -> None:
        sd = _sounddevice()
        self._lock = threading.Lock()
        self._buffer = np.zeros(0, np.float32)
        self._prebuffer = int(prebuffer * SAMPLE_RATE)
        self._playing = False
        self.underruns = 0
        try:
            self._stream = sd.OutputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                           device=device, callback=self._callback)
            self._stream.start()
        except Exception as exc:
            raise DeviceError(f"cannot open the speaker ({exc}): pick one with --device") from exc
        self.path = None

    def _callback(self, outdata, frames, time_info, status):
        with self._lock:
            self._playing = self._playing or len(self._buffer) >= self._prebuffer
            n = min(frames, len(self._buffer)) if self._playing else 0
            outdata[:n, 0] = self._buffer[:n]
            self._buffer = self._buffer[n:]
            if self._playing and n < frames:
                self.underruns += 1
                self._playing = False
        outdata[n:, 0] = 0.0

    def write(self, audio: np.ndarray) -> None:
        with self._lock:
            self._buffer = np.concatenate([self._buffer, np.clip(audio, -1.0, 1.0).astype(np.float32)])

    def close(self) -> None:
        """Let what is buffered play out, then close the device."""
        import time

        with self._lock:
            self._prebuffer = 0  # play out whatever is left
        deadline = time.monotonic() + len(self._buffer) / SAMPLE_RATE + 1.0
        while len(self._buffer) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stream.stop()
        self._stream.close()
