"""File-to-file speech coding for the CLI and scripts. Audio is streamed through in chunks, so
memory stays bounded however long the file is."""

from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np
import soundfile as sf

from streamcodec.bitstream import ContainerWriter, read_container
from streamcodec.bitstream.packet import header_bytes
from streamcodec.dsp.audio import StreamResampler, to_codec_audio
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.errors import AudioInputError
from streamcodec.speech.codec import (
    DEFAULT_GRIFFIN_LIM, DEFAULT_ITERS, MAX_PAYLOAD_BYTES, SpeechEncoder, decode_container,
)

Progress = Callable[[int], None]  # called with the number of frames just finished
CHUNK_SECONDS = 8


def _open(path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioInputError(f"cannot read audio file {path}: {exc}") from exc


def frames_in(path) -> int:
    """Number of 1.024 s frames `path` will be coded into."""
    with _open(path) as f:
        return -(-(-(-f.frames * SAMPLE_RATE // f.samplerate)) // BLOCK_SAMPLES)


def encode_chunks(chunks: Iterable[np.ndarray], samples: int, out: BinaryIO, iters: int = DEFAULT_ITERS,
                  deadline: float | None = None, model=None, progress: Progress | None = None) -> dict:
    """Encode 16 kHz chunks (`samples` in all) into a container written to `out`, one packet as
    soon as its frame is ready; returns frames and payload bits per second."""
    encoder = SpeechEncoder(model, iters=iters, deadline=deadline, stream_id=0, start_time_us=0)
    writer = ContainerWriter(out, "speech", encoder.model.model_id, {"sample_rate": SAMPLE_RATE, "samples": samples})
    overhead = header_bytes(len(encoder.model.latent_shape))
    payload_bits = frames = 0

    def emit(packets: list[bytes]) -> None:
        nonlocal payload_bits, frames
        for p in packets:
            writer.write_bytes(p)
            payload_bits += 8 * (len(p) - overhead)
            frames += 1
        if packets and progress:
            progress(len(packets))

    for chunk in chunks:
        emit(encoder.push(chunk))
    emit(encoder.flush())
    return {"frames": frames, "payload_kbps": payload_bits / (frames * BLOCK_SAMPLES / SAMPLE_RATE) / 1000}


def compress_file(src, dst, iters: int = DEFAULT_ITERS, deadline: float | None = None, model=None,
                  progress: Progress | None = None) -> dict:
    """Encode an audio file into a container file; returns a summary (frames, bytes, bitrate)."""
    with _open(src) as f:
        if f.frames == 0:
            raise AudioInputError(f"{src} holds no audio")
        resampler = StreamResampler(f.samplerate)
        samples = -(-f.frames * SAMPLE_RATE // f.samplerate)

        def chunks():
            for block in f.blocks(blocksize=CHUNK_SECONDS * f.samplerate, dtype="float32", always_2d=True):
                yield resampler.push(to_codec_audio(block, SAMPLE_RATE))
            yield resampler.flush()

        with open(dst, "wb") as out:
            summary = encode_chunks(chunks(), samples, out, iters, deadline, model, progress)
    return {**summary, "seconds": samples / SAMPLE_RATE, "bytes": Path(dst).stat().st_size}


def decompress_file(src, dst, model=None, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM,
                    progress: Progress | None = None) -> dict:
    """Decode a container file to a 16 kHz WAV; lost or damaged frames are concealed."""
    container = read_container(src, max_payload=MAX_PAYLOAD_BYTES)
    written = concealed = 0
    with sf.SoundFile(str(dst), "w", SAMPLE_RATE, 1, subtype="PCM_16") as out:
        for audio, lost in decode_container(container, model, griffin_lim_iters):
            out.write(np.clip(audio, -1.0, 1.0))
            written += len(audio)
            concealed += lost
            if progress:
                progress(1)
    return {"samples": written, "seconds": written / SAMPLE_RATE, "concealed": concealed,
            "damaged_bytes": sum(d.length for d in container.damage)}


def info(src) -> dict:
    """What a container holds: kind, model, duration, frames, bitrate, damage."""
    c = read_container(src)
    out = {"kind": c.kind, "model_id": c.model_id.hex(), "meta": c.meta, "packets": len(c.packets),
           "damaged_bytes": sum(d.length for d in c.damage), "bytes": Path(src).stat().st_size}
    if c.kind == "speech":
        seconds = int(c.meta.get("samples", 0)) / SAMPLE_RATE
        payload = sum(len(p.payload) for p in c.packets) * 8
        out.update(seconds=seconds, payload_kbps=payload / max(len(c.packets) * BLOCK_SAMPLES / SAMPLE_RATE, 1e-9) / 1000,
                   total_kbps=out["bytes"] * 8 / max(seconds, 1e-9) / 1000,
                   fixed_frames=sum(p.fixed for p in c.packets))
    return out
