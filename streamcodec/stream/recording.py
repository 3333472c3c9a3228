"""What a receiver keeps of each stream on disk: a WAV of the decoded audio and an append-only
speech file of the packets as they arrived (250 bytes a second, re-decodable later).

Nothing recorded is overwritten: both open an existing file of theirs for appending (a stream that
resumes after an outage, a sender stall or a receiver restart continues its recording), and a file
they cannot append to is left alone for the next free numbered name. Both stay readable after a
kill -9: the WAV header is rewritten after every write and repaired from the file size on open;
the packet file is a run of self-delimiting records that the reader resynchronises on.
"""

import hashlib
import os
import re
import struct
from pathlib import Path

import numpy as np

from streamcodec.bitstream.speech import (
    FILE_HEADER_BYTES,
    OPEN_ENDED,
    encode_file_header,
    encode_record,
    parse_file_header,
)
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.errors import BitstreamError

_WAV = struct.Struct("<4sI4s4sIHHIIHH4sI")  # RIFF header, 16-byte PCM fmt chunk, data chunk header
WAV_HEADER_BYTES = _WAV.size  # 44
MAX_NAME = 64


def safe_name(node: str) -> str:
    """A file name part for a node name from the network: letters, digits, '.', '_' and '-' kept,
    at most 64 characters, never hidden; a name that had to change gets a hash of the original so
    two nodes never share a file."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", node)[:MAX_NAME].lstrip(".") or "_"
    if name != node:
        name = f"{name[:MAX_NAME - 9]}-{hashlib.sha256(node.encode()).hexdigest()[:8]}"
    return name


def _wav_header(data_bytes: int) -> bytes:
    return _WAV.pack(b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, 1, SAMPLE_RATE, 2 * SAMPLE_RATE, 2, 16,
                     b"data", data_bytes)


def _ours(path: Path, header_bytes: int, accept) -> bool:
    """Whether `path` is absent or a file of ours that `accept(head)` recognises."""
    if not path.exists():
        return True
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(header_bytes)
    return len(head) == header_bytes and accept(head)


def free_path(path: Path, header_bytes: int, accept) -> Path:
    """`path` if it is new or ours to append to, else the first of name.1.ext, name.2.ext, ... that is."""
    candidate, n = Path(path), 0
    while not _ours(candidate, header_bytes, accept):
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate


def _is_our_wav(head: bytes) -> bool:
    fields = _WAV.unpack(head)
    return fields[0] == b"RIFF" and fields[2:8] == (b"WAVE", b"fmt ", 16, 1, 1, SAMPLE_RATE) and fields[10] == 16 \
        and fields[11] == b"data"


class WavRecorder:
    """16 kHz mono 16-bit WAV, appended to; `samples` counts everything in it."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = free_path(path, WAV_HEADER_BYTES, _is_our_wav)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        data = max(0, size - WAV_HEADER_BYTES) // 2 * 2  # a half-written sample at a kill is dropped
        os.ftruncate(fd, WAV_HEADER_BYTES + data)
        os.pwrite(fd, _wav_header(data), 0)
        self._fd, self._data = fd, data

    @property
    def samples(self) -> int:
        return self._data // 2

    def write(self, audio: np.ndarray) -> None:
        # floor(x * 32768), as libsndfile converts, so a stream's WAV equals `streamcodec decode`'s
        pcm = np.clip(np.floor(np.asarray(audio, np.float64) * 32768), -32768, 32767).astype("<i2").tobytes()
        if not pcm:
            return
        os.pwrite(self._fd, pcm, WAV_HEADER_BYTES + self._data)
        self._data += len(pcm)
        os.pwrite(self._fd, struct.pack("<I", 36 + self._data), 4)
        os.pwrite(self._fd, struct.pack("<I", self._data), 40)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PacketArchive:
    """The packets of one stream as they arrived, in an open-ended speech file (`streamcodec decode`
    reads it); appended to when the file is already this model's archive."""

    def __init__(self, path: Path, model_id: bytes) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def accept(head: bytes) -> bool:
            try:
                return parse_file_header(head) == (bytes(model_id), OPEN_ENDED)
            except BitstreamError:
                return False

        self.path = free_path(path, FILE_HEADER_BYTES, accept)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if os.fstat(self._fd).st_size == 0:
            os.write(self._fd, encode_file_header(model_id, OPEN_ENDED))

    def write(self, packet: bytes) -> None:
        os.write(self._fd, encode_record(packet))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Buffered:
    """A new stream's outputs held in memory until it has proven itself (ESTABLISHED decoded
    frames), used once the receiver has created its cap of files for streams that never became
    real: a flood of fake streams then costs memory for a few frames each, not files."""

    path = None
    samples = 0

    def __init__(self) -> None:
        self.audio: list[np.ndarray] = []
        self.packets: list[bytes] = []

    def write(self, audio: np.ndarray) -> None:
        self.audio.append(np.array(audio, np.float32))

    def close(self) -> None:
        self.audio, self.packets = [], []
