"""File-to-file speech coding for the CLI and scripts. Audio is streamed through in chunks, so
memory stays bounded however long the file is."""

from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np
import soundfile as sf

from streamcodec.bitstream.speech import (
    FILE_HEADER_BYTES, RECORD_BYTES, SpeechFile, SpeechFileWriter, read_speech_file, speech_file_info,
)
from streamcodec.dsp.audio import StreamResampler, to_codec_audio
from streamcodec.dsp.params import BLOCK_SAMPLES, SAMPLE_RATE
from streamcodec.errors import AudioInputError, BitstreamError
from streamcodec.speech.codec import (
    DEFAULT_GRIFFIN_LIM, DEFAULT_ITERS, DEFAULT_KBPS, DEFAULT_POSTFILTER, SpeechEncoder, decode_file,
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
                  deadline: float | None = None, model=None, progress: Progress | None = None,
                  kbps: float = DEFAULT_KBPS, dtx: bool = True, denoise: bool | None = None,
                  context: bool = False) -> dict:
    """Encode 16 kHz chunks (`samples` in all) into a speech file written to `out`, one packet as
    soon as its frame is ready; returns frame counts and the rate, payload and on the wire."""
    encoder = SpeechEncoder(model, iters=iters, deadline=deadline, kbps=kbps, dtx=dtx,
                            stream_id=0, start_time_us=0, denoise=denoise, context=context)
    writer = SpeechFileWriter(out, encoder.model.model_id, samples)
    payload_bits, wire_bytes, frames = 0, FILE_HEADER_BYTES, 0

    def emit(packets: list[bytes]) -> None:
        nonlocal payload_bits, wire_bytes, frames
        for p in packets:
            payload_bits += 8 * len(writer.write(p).payload)
            wire_bytes += len(p) + RECORD_BYTES
            frames += 1
        if packets and progress:
            progress(len(packets))

    for chunk in chunks:
        emit(encoder.push(chunk))
    emit(encoder.flush())
    seconds = max(samples, 1) / SAMPLE_RATE
    return {"frames": frames, "speech_frames": encoder.speech_frames, "silent_frames": encoder.silent_frames,
            "payload_kbps": payload_bits / seconds / 1000, "wire_kbps": 8 * wire_bytes / seconds / 1000}


def compress_file(src, dst, iters: int = DEFAULT_ITERS, deadline: float | None = None, model=None,
                  progress: Progress | None = None, kbps: float = DEFAULT_KBPS, dtx: bool = True,
                  denoise: bool | None = None) -> dict:
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
            summary = encode_chunks(chunks(), samples, out, iters, deadline, model, progress, kbps, dtx, denoise)
    return {**summary, "seconds": samples / SAMPLE_RATE, "bytes": Path(dst).stat().st_size}


def decompress_file(src, dst, model=None, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM,
                    progress: Progress | None = None, postfilter: float = DEFAULT_POSTFILTER) -> dict:
    """Decode a speech file (a path, bytes or a parsed SpeechFile) to a 16 kHz WAV; lost or damaged
    frames are concealed."""
    file = src if isinstance(src, SpeechFile) else read_speech_file(src)
    if not file.packets:
        damage = f" ({sum(d.length for d in file.damage)} bytes damaged)" if file.damage else ""
        name = "the file" if src is file else src
        raise BitstreamError(f"{name} holds no intact frame{damage}: there is nothing to decode")
    written = concealed = 0
    with sf.SoundFile(str(dst), "w", SAMPLE_RATE, 1, subtype="PCM_16") as out:
        for audio, lost in decode_file(file, model, griffin_lim_iters, postfilter):
            out.write(np.clip(audio, -1.0, 1.0))
            written += len(audio)
            concealed += lost
            if progress:
                progress(1)
    return {"samples": written, "seconds": written / SAMPLE_RATE, "concealed": concealed,
            "damaged_bytes": sum(d.length for d in file.damage)}


info = speech_file_info  # for the file-level API beside compress_file and decompress_file
