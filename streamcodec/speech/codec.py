"""Frame codec for speech: 1.024 s of audio <-> one v2 packet of at most 2,048 bits on the wire.

SpeechEncoder: audio chunks -> log-mel -> voice activity -> speech frames: level taken out, E gives
z0, bounded ADMM search through the generator receivers decode with (the model's `decoder`: G's
copy tuned for receivers, else G) under a hard bit budget, Huffman payload; silent frames: a
comfort-noise envelope -> packets. SpeechDecoder: packets -> G (or comfort noise) -> level put
back -> MelSynthesizer (mel inversion, RTPGHI, overlap-add), one state across frames so blocks
join. Both are streaming objects; compress()/decompress() in streamcodec.speech use them offline.

The budget is in bits on the wire: `kbps` times the audio coded so far, less what the packets,
the record byte a file adds per packet and the file header took (BitBank). So a stream, a file or
a 1.4 s message never averages more than `kbps`, all bytes counted.
"""

import collections
import concurrent.futures
import functools
import secrets
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from streamcodec.bitstream.speech import (
    CONCEAL_RATIO, FILE_HEADER_BYTES, RECORD_BYTES, MAX_GAP, MAX_PACKET, OPEN_ENDED, TYPE_COMFORT, TYPE_SPEECH, SpeechFile,
    SpeechPacket, overhead_bytes, parse_speech_packet, unwrap_sequence,
)
from streamcodec.core.search import LOUDNESS_WEIGHT, RateLimit, RoutedObjective, admm_search, loudness_weighted_mse
from streamcodec.defaults import MAX_KBPS, SPEECH_GRIFFIN_LIM, SPEECH_ITERS, SPEECH_KBPS, SPEECH_POSTFILTER
from streamcodec.dsp import MelAnalyzer, MelSynthesizer
from streamcodec.dsp.dtx import VoiceActivity, comfort_noise, decode_envelope, encode_envelope, noise_level
from streamcodec.dsp.level import HEADROOM_DB, apply_gain, byte_to_level, gain_for, level_to_byte, measure_level
from streamcodec.dsp.mel import DB_PER_UNIT
from streamcodec.dsp.postfilter import sharpen
from streamcodec.dsp.params import BLOCK_FRAMES, BLOCK_SAMPLES, HOP, N_MELS, SAMPLE_RATE
from streamcodec.errors import AudioInputError, BitstreamError
from streamcodec.speech.model import ModelError, SpeechModel, fill_level, resolve_model
from streamcodec.threads import count as thread_count

# The search's Adam step on z, ADMM's penalty weight, and how often it scores its quantised
# iterate (every 4 iterations: 27 % faster than every one, same quality): chosen end to end on
# the development set (benchmarks/search_tuning.py, results/search_tuning.md). It scores only
# from half its iterations on (and the first latents): early iterates seldom beat later ones.
SEARCH_LR, SEARCH_MU, SEARCH_EVAL_EVERY = 0.1, 0.01, 4
DEFAULT_ITERS, DEFAULT_GRIFFIN_LIM, DEFAULT_KBPS = SPEECH_ITERS, SPEECH_GRIFFIN_LIM, SPEECH_KBPS
DEFAULT_POSTFILTER = SPEECH_POSTFILTER
SILENCE = -1.0  # log-mel of silence
SILENCE_IN = -1.0 - HEADROOM_DB / DB_PER_UNIT  # the same at the encoder, which analyses with headroom
STEP_SAMPLES = 512  # audio per latent time step (4 STFT frames of 128 samples)
STEP_FRAMES = STEP_SAMPLES // HOP
TASKS_PER_WORKER = 2  # an encoder's batch is cut into this many pieces per worker thread
CONTEXT_FRAMES = 48  # STFT frames of the stream before a frame that the enhancer and E see (12 latent steps)
# A frame the enhancer changed by more than this (mean |change| of its log-mel, [-1, 1] units) is
# searched through G, not the receiver's generator: that generator learnt to clean up the indices
# G's search gives noisy frames, and a search through it puts the noise the enhancer left back
# in. Clean, quiet, clipped and 8 kHz speech stays below it in 90 to 97 % of frames, speech in
# noise is above it in 82 to 100 %, reverberant speech in half (benchmarks/results/search_decoder.md).
NOISY_FRAME = 0.01
NOISY_WEIGHT = 4.0  # their search's loudness weight: that of the packets the receiver's generator learnt


def coded_steps(samples: int, steps: int) -> int:
    """Latent time steps a frame carrying `samples` samples sends: those whose STFT frames touch
    the audio (a step is 4 centred frames), the rest of the frame is not coded."""
    return min(steps, samples // STEP_SAMPLES + 2)


def min_kbps(model: SpeechModel, framing_bytes: int = RECORD_BYTES) -> float:
    """The lowest rate a model can hold: every value on its cheapest code, the packet and its
    framing (a file's record byte, or an MQTT PUBLISH's), and a file header on the first frame."""
    channels, steps = model.latent_shape
    bits = channels * steps * int(model.code.lengths.min()) + 8 * (overhead_bytes() + framing_bytes + FILE_HEADER_BYTES)
    return np.ceil(bits / (BLOCK_SAMPLES / SAMPLE_RATE) / 10) / 100


class BitBank:
    """Bits on the wire a stream may still spend: `kbps` times the audio coded so far, less what
    its packets (and a file's header and record bytes) took. Each frame gets its own share; the
    first of a batch also gets what earlier frames left unspent (so a short last frame can borrow
    from the frames before it), and the total never exceeds `kbps` at any frame boundary."""

    def __init__(self, kbps: float, debt_bits: int = 0) -> None:
        self.kbps, self.samples, self.spent = kbps, 0, debt_bits

    def share(self, samples: int) -> int:
        return int(self.kbps * 1000 * samples / SAMPLE_RATE)

    def available(self, samples: int) -> int:
        """Bits a frame of `samples` may take if it is the next one coded."""
        return int(self.kbps * 1000 * (self.samples + samples) / SAMPLE_RATE) - self.spent

    def spend(self, samples: int, bits: int) -> None:
        self.samples += samples
        self.spent += bits


def payload_budget(total_bits: int, short: bool, framing_bytes: int = RECORD_BYTES) -> int:
    """Payload bits (whole bytes) left of a frame's bits on the wire once its packet header and
    framing are paid, within the format's 2,048-bit packet."""
    return max(0, (min(total_bits, 8 * MAX_PACKET) // 8 - overhead_bytes(short) - framing_bytes) * 8)


def _frames_of(f: "_Frame") -> int:
    """STFT frames of a frame that hold its audio (a short frame is padded with silence)."""
    return max(1, min(BLOCK_FRAMES, -(-f.samples // HOP)))


@dataclass
class _Frame:
    seq: int
    mel: np.ndarray  # (BLOCK_FRAMES, N_MELS)
    samples: int  # audio samples it carries (0: only the analysis tail after the last sample)
    last: bool
    before: np.ndarray  # (CONTEXT_FRAMES, N_MELS): the stream just before it (silence at the start)


class SpeechEncoder:
    """Push 16 kHz float audio; get encoded packets (bytes) as 1.024 s frames complete.

    iters and deadline bound the work per frame batch (deadline in seconds from the start of its
    coding, enhancer and encoder included, the search taking what is left; None for no limit;
    iters=0 sends the quantised encoder output). `kbps` is the rate on the wire, counted as if the
    packets were written to a file (its header and record bytes included), so a live stream
    recorded by a receiver is within the rate too; `framing_bytes` is what carrying each packet
    adds (1, a file's record byte; a live sender sets its MQTT framing, stream/sender.py, so the
    rate holds on the MQTT link); `dtx` sends silent frames as comfort noise. `context` lets the
    enhancer and E see the stream's last CONTEXT_FRAMES before each frame (the previous frame as
    context, issue 14; measured: no gain, benchmarks/results/speech_robustness_context.md, so off).
    `workers` threads code the frames of a batch side by side (default: streamcodec.threads.count();
    a live stream's batches are single frames).
    warm_start carries ADMM's dual variable from one frame to the next. `denoise` passes each frame
    through the model's enhancer first (noise and reverberation taken out in the log-mel domain),
    so E and the search code the estimate of the clean speech; the packets are the same format
    and decode on any receiver of the model. None (the default) uses the enhancer when the model
    has one. Capture
    times count from start_time_us (default: when the first samples were pushed; offline files
    use 0, so the same input always gives the same bytes).
    """

    def __init__(self, model=None, iters: int = DEFAULT_ITERS, deadline: float | None = None,
                 kbps: float = DEFAULT_KBPS, dtx: bool = True,
                 stream_id: int | None = None, warm_start: bool = False, start_time_us: int | None = None,
                 denoise: bool | None = None, framing_bytes: int = RECORD_BYTES, context: bool = False,
                 workers: int | None = None) -> None:
        self.model = resolve_model(model)
        self.context = context
        self.workers = thread_count() if workers is None else workers
        lowest = min_kbps(self.model, framing_bytes)
        if not lowest <= kbps <= MAX_KBPS:
            raise AudioInputError(f"bitrate {kbps} kbit/s is outside {lowest}..{MAX_KBPS}, the range model "
                                  f"{self.model.name} can hold: pick one in that range")
        self.bank = BitBank(kbps, 8 * FILE_HEADER_BYTES)
        self.framing_bytes = framing_bytes
        self.iters, self.deadline, self.warm_start = iters, deadline, warm_start
        if denoise and self.model.enhancer is None:
            raise ModelError(f"model {self.model.name} has no enhancer to denoise with: "
                             "leave denoise off or train one (streamcodec train enhancer)")
        self.dtx, self.denoise = dtx, self.model.enhancer is not None if denoise is None else denoise
        self.stream_id = secrets.randbits(32) if stream_id is None else stream_id
        self.sequence = 0
        self.last_iterations = 0  # ADMM iterations spent on the latest speech frame
        self.speech_frames = self.silent_frames = 0
        self._vad = VoiceActivity()
        self._analyzer = MelAnalyzer(HEADROOM_DB)
        self._frames = np.zeros((0, N_MELS), np.float32)
        self._before = np.full((CONTEXT_FRAMES, N_MELS), SILENCE_IN, np.float32)
        self._dual: np.ndarray | None = None
        self._samples_in = 0
        self._samples_out = 0
        self._start_us = start_time_us  # None: set by the first push()

    @property
    def start_time_us(self) -> int | None:
        """Capture time of the stream's first sample (microseconds since the epoch)."""
        return self._start_us

    def push(self, samples: np.ndarray) -> list[bytes]:
        if self._start_us is None:  # a live source hands over audio as it is captured
            self._start_us = time.time_ns() // 1000 - len(samples) * 1_000_000 // SAMPLE_RATE
        self._samples_in += len(samples)
        return self._encode_ready(self._analyzer.push(samples), final=False)

    def flush(self) -> list[bytes]:
        """Encode what is left, marking the last packet; a short last frame codes only the latent
        steps that cover its audio."""
        pad = (-self._samples_in) % BLOCK_SAMPLES
        frames = np.concatenate([self._analyzer.push(np.zeros(pad, np.float32)), self._analyzer.flush()])
        return self._encode_ready(frames, final=True)

    def _encode_ready(self, frames: np.ndarray, final: bool) -> list[bytes]:
        self._frames = np.concatenate([self._frames, frames])
        n = len(self._frames) // BLOCK_FRAMES
        if final and len(self._frames) % BLOCK_FRAMES:
            n += 1
            short = n * BLOCK_FRAMES - len(self._frames)
            self._frames = np.concatenate([self._frames, np.full((short, N_MELS), SILENCE_IN, np.float32)])
        if n == 0:
            return []
        blocks = self._frames[: n * BLOCK_FRAMES].reshape(n, BLOCK_FRAMES, N_MELS)
        self._frames = self._frames[n * BLOCK_FRAMES :]
        todo = []
        for i, mel in enumerate(blocks):
            samples = min(BLOCK_SAMPLES, self._samples_in - self._samples_out) if final else BLOCK_SAMPLES
            self._samples_out += samples
            todo.append(_Frame(self.sequence + i, mel, samples, final and i == n - 1, self._before))
            self._before = mel[-CONTEXT_FRAMES:]
        if len(todo) > 1 and todo[-1].samples == 0:  # only the analysis tail is left: the frame before ends it
            todo.pop()
            todo[-1].last = True
        self.sequence += len(todo)
        return self._encode_frames(todo)

    def _encode_frames(self, frames: list[_Frame]) -> list[bytes]:
        speech = [f for f in frames if f.samples and (not self.dtx or self._vad.is_speech(f.mel[: _frames_of(f)]))]
        # Frames of one stream are searched one after another when the dual variable carries
        # over; otherwise the ready speech frames go through the search as one batch, but for a
        # short last frame, searched after the others so it can borrow what they left unspent.
        if self.warm_start:
            groups = [[f] for f in speech]
        else:
            groups = [[f for f in speech if not f.last], [f for f in speech if f.last]]
        out, pending = [], list(frames)
        for group in groups:
            if not group:
                continue
            while pending and pending[0] is not group[0]:  # silent frames before the group, in order
                out.append(self._finish(pending.pop(0), None))
            budgets = [self.bank.available(group[0].samples)] + [self.bank.share(f.samples) for f in group[1:]]
            for f, coded in zip(group, self.encode_frames(group, budgets)):
                while pending[0] is not f:
                    out.append(self._finish(pending.pop(0), None))
                out.append(self._finish(pending.pop(0), coded))
        out += [self._finish(f, None) for f in pending]
        return out

    def _finish(self, f: _Frame, coded: tuple[bytes, int] | None) -> bytes:
        """The packet of a frame: its speech payload, or (silent frame, or a speech frame whose
        cheapest coding cannot fit what the rate allows) a comfort-noise description."""
        if coded is not None and coded[0] is not None:
            (payload, level), kind = coded, TYPE_SPEECH
            self.speech_frames += 1
        else:
            self.silent_frames += 1
            kind = TYPE_COMFORT
            if f.samples == 0:  # the end fell on a frame boundary: an empty last frame
                payload, level = b"", 255
            else:
                mel = f.mel[: _frames_of(f)]
                level = int(level_to_byte(noise_level(mel)))
                payload = encode_envelope(mel, float(byte_to_level(level)))
        data = SpeechPacket(f.seq, level, payload, kind, max(f.samples, 1), f.seq == 0, f.last).encode()
        self.bank.spend(f.samples, 8 * (len(data) + self.framing_bytes))
        return data

    def encode_frames(self, frames: list[_Frame], budgets: list[int]) -> list[tuple[bytes | None, int]]:
        """Speech frames and their bits on the wire -> (Huffman payload, level byte) each, every
        payload within its budget (None where even the cheapest coding would not fit). With worker
        threads the frames go out in small batches that idle workers take in turn: a worker that
        waits for a core a neighbour holds delays only the batches it took."""
        start = time.perf_counter()  # the deadline covers the enhancer and E too
        n = min(self.workers, len(frames))
        if n <= 1:
            out, self.last_iterations = self._code(frames, budgets, start)
            return out
        if self.denoise:
            self.model.enhancer  # noqa: B018 (loaded once, before the threads ask for it)
        parts = np.array_split(np.arange(len(frames)), min(len(frames), TASKS_PER_WORKER * n))
        jobs = [_pool(n).submit(self._code, [frames[i] for i in part], [budgets[i] for i in part], start)
                for part in parts]
        results = [job.result() for job in jobs]
        self.last_iterations = min(iterations for _, iterations in results)
        return [coded for out, _ in results for coded in out]

    def _code(self, frames: list[_Frame], budgets: list[int], start: float) -> tuple[list[tuple[bytes | None, int]], int]:
        """encode_frames for one batch, in one thread; also returns the search's iterations."""
        m = self.model
        mels = np.stack([f.mel for f in frames])
        level = level_to_byte(measure_level(mels))
        gain = gain_for(byte_to_level(level), m.level_target_db)
        # With context, the enhancer and E also see the stream's last CONTEXT_FRAMES before each
        # frame (at the frame's gain) and the frame's own part of their output is kept.
        c = CONTEXT_FRAMES if self.context else 0
        if c:
            mels = np.concatenate([np.stack([f.before for f in frames]), mels], axis=1)
        x = np.ascontiguousarray(apply_gain(mels, gain, keep_floor=False).transpose(0, 2, 1), np.float32)
        channels, steps = m.latent_shape
        sent = [coded_steps(f.samples, steps) for f in frames]
        mask = np.zeros((len(frames), channels, steps), bool)
        for i, k in enumerate(sent):
            mask[i, :, :k] = True
        payload_bits = [payload_budget(b, f.samples < BLOCK_SAMPLES, self.framing_bytes) for b, f in zip(budgets, frames)]
        limit = RateLimit(m.code.lengths.astype(np.int64), np.array(payload_bits, np.float64), mask, fill_level(m))
        eta0 = self._dual if (self.warm_start and self._dual is not None) else None
        deadline = None if self.deadline is None else max(0.0, self.deadline - (time.perf_counter() - start))
        result = search_latents(m, x, limit, self.iters, self.denoise, deadline, eta0, c)
        self._dual = result.dual  # carried over only with warm_start, whose batches are single frames
        indices = result.indices
        out = []
        for i, k in enumerate(sent):
            payload, bits = m.code.encode(indices[i, :, :k])
            out.append((payload if bits <= payload_bits[i] else None, int(level[i])))
        return out, result.iterations


def search_latents(m: SpeechModel, x: np.ndarray, limit: RateLimit, iters: int, denoise: bool,
                   deadline: float | None = None, eta0: np.ndarray | None = None, context: int = 0):
    """Level-normalised (n, mels, context + BLOCK_FRAMES) log-mel -> the search's result for its
    last BLOCK_FRAMES: enhancer (with `denoise`), E's first latent, bounded ADMM search through the
    generator receivers decode with (the model's `decoder`), but for frames the enhancer cleaned
    (see NOISY_FRAME), searched through G. The encoder's core, also what train/decoder.py trains
    the receiver's generator on."""
    x, noisy = enhance(m, x, denoise, context)
    z0 = np.ascontiguousarray(m.encoder(x)[..., context // STEP_FRAMES :])
    x = np.ascontiguousarray(x[..., context:])
    objective = RoutedObjective([(net, functools.partial(loudness_weighted_mse, weight=w)) for net, w in search_ways(m)],
                                noisy.astype(int), x)
    return admm_search(objective, z0, m.levels, iters=iters, deadline=deadline, lr=SEARCH_LR, mu=SEARCH_MU,
                       eval_every=SEARCH_EVAL_EVERY, eval_from=iters // 2, eta0=eta0, limit=limit)


def enhance(m: SpeechModel, x: np.ndarray, denoise: bool, context: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What the search aims at (the enhancer's estimate with `denoise`, else x) and which frames
    the enhancer cleaned (searched through G, see NOISY_FRAME)."""
    if not denoise:
        return x, np.zeros(len(x), bool)
    clean = m.enhancer(x)
    return clean, enhancer_change(x[..., context:], clean[..., context:]) > NOISY_FRAME


def search_ways(m: SpeechModel) -> list[tuple]:
    """(generator, loudness weight) a frame is searched through: [0] clean frames, [1] noisy ones."""
    return [(m.decoder, LOUDNESS_WEIGHT), (m.generator, NOISY_WEIGHT)]


def enhancer_change(x: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """How much the enhancer changed each frame: the mean |change| of its log-mel (NOISY_FRAME)."""
    return np.abs(clean - x).mean(axis=(1, 2))


@functools.lru_cache(maxsize=4)
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """Encoder threads, shared by every encoder in the process."""
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="streamcodec-encoder")


class SpeechDecoder:
    """Decode packets of one stream, in order, to 16 kHz audio. Lost frames are concealed.
    The model's receiver decoder makes the log-mel where the model ships one and `large_decoder`
    is on (it also reads the end of the frame before: a lost or silent one counts as unsent
    steps), else its `decoder` (G, or G's copy tuned for receivers), which the encoder searched
    through; `postfilter` raises the log-mel's spectral contrast (dsp/postfilter.py; 0: off)."""

    CONCEAL_FADE = 0.12  # log-mel units (6 dB) a concealed frame is attenuated by, per lost frame

    def __init__(self, model=None, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM, seed: int = 0,
                 postfilter: float = DEFAULT_POSTFILTER, large_decoder: bool = True) -> None:
        self.model = resolve_model(model)
        self.postfilter = postfilter
        self.large_decoder = large_decoder  # may change between frames (a busy receiver turns it off)
        self.last_decoder = ""  # which made the latest frame: "large" or "small"
        self._before: np.ndarray | None = None  # the level indices of the frame before, where it was speech
        self._synth = MelSynthesizer(griffin_lim_iters)
        self._last_mel: np.ndarray | None = None
        self._lost_in_row = 0
        self._rng = np.random.default_rng(seed)
        self._recent_levels: collections.deque[int] = collections.deque(maxlen=8)  # level bytes of recent speech frames
        self._noise_env: np.ndarray | None = None

    @property
    def griffin_lim_iters(self) -> int:
        """Phase refinement per frame; may change between frames (a receiver that falls behind
        lowers it before it has to drop frames)."""
        return self._synth.griffin_lim_iters

    @griffin_lim_iters.setter
    def griffin_lim_iters(self, iters: int) -> None:
        self._synth.griffin_lim_iters = iters

    def read_packet(self, data: bytes | SpeechPacket) -> SpeechPacket:
        return data if isinstance(data, SpeechPacket) else parse_speech_packet(data)

    def latent(self, p: SpeechPacket) -> np.ndarray:
        """The (channels, steps) level indices of a speech packet; unsent steps get the fill level."""
        channels, steps = self.model.latent_shape
        k = coded_steps(p.samples, steps)
        idx = np.full((channels, steps), fill_level(self.model), np.int64)
        idx[:, :k] = self.model.code.decode(p.payload, channels * k).reshape(channels, k)
        return idx

    def decode_mel(self, indices: np.ndarray, level: np.ndarray | None = None,
                   before: np.ndarray | None = None) -> np.ndarray:
        """(n, *latent) indices (and level bytes, and the indices of the frames before them for
        the large decoder; None: unknown) -> (n, BLOCK_FRAMES, N_MELS) log-mel."""
        m = self.model
        z = m.levels[np.asarray(indices, np.int64)]
        large = m.receiver if self.large_decoder else None
        if large is None:
            mel, self.last_decoder = m.decoder(z), "small"
        else:
            mel, self.last_decoder = large(z, None if before is None else m.levels[np.asarray(before, np.int64)]), "large"
        mel = sharpen(mel.transpose(0, 2, 1), self.postfilter)
        if level is None:
            return mel
        gain = gain_for(byte_to_level(level), self.model.level_target_db)
        self._recent_levels.extend(np.atleast_1d(level).tolist())
        quiet = gain_for(byte_to_level(min(self._recent_levels)), self.model.level_target_db) > 0
        # A quiet stream is restored into the headroom below the floor, so its detail survives; a
        # stream at a normal level keeps the floor where the model put it, as before levelling.
        low = -1.0 - np.maximum(gain, 0.0) / DB_PER_UNIT if quiet else -1.0
        return apply_gain(mel, -gain, low=low)

    def frame_mel(self, data: bytes | SpeechPacket) -> np.ndarray:
        """One packet -> its (BLOCK_FRAMES, N_MELS) log-mel (BitstreamError if malformed)."""
        p = self.read_packet(data)
        if p.kind == TYPE_COMFORT:
            try:
                env = decode_envelope(p.payload, float(byte_to_level(p.level)))
            except ValueError as exc:
                raise BitstreamError(str(exc)) from exc
            mel = comfort_noise(env, BLOCK_FRAMES, self._rng, self._noise_env)
            self._noise_env, self._before = env, None
            return mel
        self._noise_env = None
        indices = self.latent(p)
        mel = self.decode_mel(indices[None], np.array([p.level]), None if self._before is None else self._before[None])[0]
        self._before = indices
        return mel

    def decode(self, data: bytes | SpeechPacket) -> np.ndarray:
        """One packet -> the audio samples that are now final."""
        mel = self.frame_mel(data)
        self._last_mel, self._lost_in_row = mel, 0
        return self._synth.push(mel)

    def conceal(self) -> np.ndarray:
        """A lost frame: the previous frame faded by 6 dB per loss in a row, or silence."""
        self._lost_in_row += 1
        self._before = None
        if self._last_mel is None:
            mel = np.full((BLOCK_FRAMES, N_MELS), SILENCE, np.float32)
        else:
            mel = np.maximum(self._last_mel - self.CONCEAL_FADE * self._lost_in_row, SILENCE)
        return self._synth.push(mel)

    def flush(self) -> np.ndarray:
        return self._synth.flush()


def warm_up(model=None, encode: bool = True, decode: bool = True, denoise: bool = False) -> None:
    """Run one frame through what a process will use, the encoder and search (with `denoise`, the
    enhancer) and/or the decoder, so that one-time costs (BLAS's first calls, loading the enhancer,
    numba's compiled PGHI) are not paid by the first frame of a live stream. A sender warms only
    its encoder (it never loads numba), a receiver only its decoder."""
    m = resolve_model(model)
    if encode:
        encoder = SpeechEncoder(m, iters=2, dtx=False, denoise=denoise)
        encoder.push(np.zeros(BLOCK_SAMPLES, np.float32))
        encoder.flush()
    if decode:
        payload, _ = m.code.encode(np.full(m.latent_shape, fill_level(m)))
        level = int(level_to_byte(m.level_target_db))
        decoder = SpeechDecoder(m)
        decoder.decode(SpeechPacket(0, level, payload, TYPE_SPEECH, BLOCK_SAMPLES, True, True))
        decoder.flush()


def decode_file(file: SpeechFile, model=None, griffin_lim_iters: int = DEFAULT_GRIFFIN_LIM,
                postfilter: float = DEFAULT_POSTFILTER) -> Iterator[tuple[np.ndarray, bool]]:
    """Decode a read speech file frame by frame: yields (audio, concealed) in order, the audio
    trimmed to the length the file declares. Missing or damaged frames are concealed, but a hostile
    header or sequence numbers cannot make the output longer than the packets present can carry:
    no frames after the last one present, a gap of more than MAX_GAP frames closes up, and at most
    CONCEAL_RATIO concealed frames per frame present. An open-ended file (a receiver's archive of
    a live stream, which may start at any sequence number) runs from its first packet to its last."""
    decoder = SpeechDecoder(model, griffin_lim_iters, postfilter=postfilter)
    if not decoder.model.decodes(file.model_id):
        raise BitstreamError(f"file was made with model {file.model_id.hex()}, this decoder has "
                             f"{decoder.model.model_id.hex()} ({decoder.model.name}): use the same model")
    if not file.packets:
        return
    by_seq: dict[int, SpeechPacket] = {}
    open_ended = file.samples == OPEN_ENDED
    offset = prev = file.packets[0].sequence if open_ended else 0  # the sequence number of output frame 0
    for p in file.packets:
        seq = unwrap_sequence(p.sequence, prev)
        if seq - prev > MAX_GAP:  # a long pause (a receiver that was down): close it up
            offset += seq - prev - 1
        prev = seq
        if seq >= offset:
            by_seq.setdefault(seq - offset, p)
    if not by_seq:
        return
    frames = min(max(by_seq) + 1, CONCEAL_RATIO * len(by_seq))
    if not open_ended:
        frames = min(frames, -(-file.samples // BLOCK_SAMPLES))
    last = by_seq.get(frames - 1)
    end = (frames - 1) * BLOCK_SAMPLES + (last.samples if last is not None else BLOCK_SAMPLES)
    left = end if open_ended else min(file.samples, end)
    for seq in range(frames):
        packet = by_seq.get(seq)
        audio = decoder.conceal() if packet is None else _decode_or_conceal(decoder, packet)
        yield audio[:left], packet is None
        left -= min(left, len(audio))
    yield decoder.flush()[:left], False


def _decode_or_conceal(decoder: SpeechDecoder, packet: SpeechPacket) -> np.ndarray:
    try:
        return decoder.decode(packet)
    except BitstreamError:  # a packet whose CRC held but whose payload does not decode
        return decoder.conceal()

