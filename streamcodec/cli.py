"""The `streamcodec` command: argument parsing and printing only; the work is in the library."""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from streamcodec import __version__
from streamcodec.errors import StreamcodecError


def _read_audio(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise StreamcodecError(f"cannot read audio file {path}: {exc}") from exc
    return data, rate


def _write_audio(path: str, audio: np.ndarray, rate: int) -> None:
    import soundfile as sf

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16")


def _cmd_vocode(args: argparse.Namespace) -> int:
    from streamcodec.speech import vocode

    audio, rate = _read_audio(args.input)
    start = time.perf_counter()
    out, out_rate = vocode(audio, rate, griffin_lim_iters=args.griffin_lim)
    elapsed = time.perf_counter() - start
    _write_audio(args.output, out, out_rate)
    seconds = len(out) / out_rate
    print(f"{args.input} -> {args.output}: {seconds:.2f} s of audio in {elapsed:.2f} s "
          f"(real-time factor {elapsed / seconds:.3f}), log-mel -> RTPGHI + {args.griffin_lim} Griffin-Lim iterations")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamcodec", description="Speech at 2 kbps, live over MQTT or offline.")
    parser.add_argument("--version", action="version", version=f"streamcodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    vocode = sub.add_parser("vocode", help="round-trip a speech file through the log-mel signal path (no compression)")
    vocode.add_argument("input", help="audio file (WAV, FLAC, OGG; any rate, mono or stereo)")
    vocode.add_argument("output", help="16 kHz mono WAV to write")
    vocode.add_argument("--griffin-lim", type=int, default=4, metavar="N", help="refinement iterations (default 4)")
    vocode.set_defaults(func=_cmd_vocode)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except StreamcodecError as exc:
        print(f"streamcodec: error: {exc}", file=sys.stderr)
        return 2
