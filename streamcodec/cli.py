"""The `streamcodec` command: argument parsing and printing only; the work is in the library."""

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from streamcodec import __version__
from streamcodec.defaults import (IMAGE_BPP, IMAGE_ITERS, IMAGE_RD_ITERS, SPEECH_GRIFFIN_LIM, SPEECH_ITERS, SPEECH_KBPS,
                                  SPEECH_POSTFILTER)
from streamcodec.errors import StreamcodecError
from streamcodec.stream.limits import Limits


def _read_audio(path: str):
    import soundfile as sf

    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise StreamcodecError(f"cannot read audio file {path}: {exc}") from exc
    return data, rate


@contextlib.contextmanager
def _output(args: argparse.Namespace, path: str):
    """Where a command writes `path`: never over its input, never over an existing file without
    --force, missing folders created. The file is written beside the target and renamed into
    place once complete, so a failure midway leaves no half file and loses nothing."""
    target, source = Path(path), Path(args.input)
    if target.exists() and source.exists() and os.path.samefile(target, source):
        raise StreamcodecError(f"{path} is the input file: choose another output name")
    if target.exists() and not args.force:
        raise StreamcodecError(f"{path} exists: pass --force (or -y) to replace it")
    if target.is_dir():
        raise StreamcodecError(f"{path} is a folder: give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial{target.suffix}")
    try:
        yield str(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _write_audio(path: str, audio, rate: int) -> None:
    import numpy as np
    import soundfile as sf

    sf.write(path, np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")


def _cmd_vocode(args: argparse.Namespace) -> int:
    from streamcodec.speech import vocode

    audio, rate = _read_audio(args.input)
    start = time.perf_counter()
    out, out_rate = vocode(audio, rate, griffin_lim_iters=args.griffin_lim)
    elapsed = time.perf_counter() - start
    with _output(args, args.output) as path:
        _write_audio(path, out, out_rate)
    seconds = len(out) / out_rate
    print(f"{args.input} -> {args.output}: {seconds:.2f} s of audio in {elapsed:.2f} s "
          f"(real-time factor {elapsed / seconds:.3f}), log-mel -> RTPGHI + {args.griffin_lim} Griffin-Lim iterations")
    return 0


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=total < 8 or not sys.stderr.isatty())


def _cmd_encode(args: argparse.Namespace) -> int:
    from streamcodec.speech.files import compress_file, frames_in

    with _progress_bar(frames_in(args.input), "encode") as bar, _output(args, args.output) as path:
        start = time.perf_counter()
        s = compress_file(args.input, path, iters=args.iters, deadline=args.deadline, model=args.model,
                          progress=bar.update, kbps=args.kbps, dtx=not args.no_dtx, denoise=args.denoise)
        elapsed = time.perf_counter() - start
    print(f"{args.input} -> {args.output}: {s['seconds']:.2f} s in {s['frames']} frames ({s['silent_frames']} silent), "
          f"{s['bytes']} bytes = {s['wire_kbps']:.3f} kbps on the wire (payload {s['payload_kbps']:.3f}), "
          f"real-time factor {elapsed / s['seconds']:.3f}")
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from streamcodec.bitstream.speech import read_speech_file
    from streamcodec.speech.files import decompress_file

    file = read_speech_file(args.input)  # parsed once: the progress bar and the decoder share it
    with _progress_bar(len(file.packets), "decode") as bar, _output(args, args.output) as path:
        s = decompress_file(file, path, model=args.model, griffin_lim_iters=args.griffin_lim,
                            progress=bar.update, postfilter=args.postfilter)
    note = f", {s['concealed']} lost frames concealed" if s["concealed"] else ""
    print(f"{args.input} -> {args.output}: {s['seconds']:.2f} s of 16 kHz audio{note}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from streamcodec.bitstream.speech import FILE_MAGIC

    with open(args.input, "rb") as f:
        head = f.read(6)
    image = len(head) == 6 and head[:4] == FILE_MAGIC and head[4] in (1, 3) and head[5] == 2  # image files
    if image:
        from streamcodec.image import info

        s = info(args.input)
        detail = (f"quality: {s['quality']}" if s["format"] == 3
                  else f"latent channels sent: {', '.join(map(str, s['channels']))}")
        lines = [f"kind: image (format v{s['format']})", f"model id: {s['model_id']}",
                 f"size: {s['width']}x{s['height']} pixels", f"tiles: {s['tiles']}", detail,
                 f"bytes: {s['bytes']}", f"bits per pixel: {s['bpp']:.3f}"]
    else:
        from streamcodec.bitstream.speech import speech_file_info

        s = speech_file_info(args.input)
        archive = ", a receiver's archive of a live stream" if s["archive"] else ""
        lines = [f"kind: {s['kind']} (format v2{archive})", f"model id: {s['model_id']}", f"duration: {s['seconds']:.2f} s" + ("" if s["archive"] else f" declared, {s['packet_seconds']:.2f} s in its packets"),
                 f"frames: {s['packets']} ({s['silent_frames']} silent, sent as comfort noise)", f"bytes: {s['bytes']}",
                 f"on the wire: {s['wire_kbps']:.3f} kbps, every byte of the file (payload {s['payload_kbps']:.3f} kbps)",
                 f"largest frame: {s['max_frame_bits']} bits (limit 2048)"]
    if s["damaged_bytes"]:
        lines.append(f"damaged: {s['damaged_bytes']} bytes could not be read")
    print("\n".join(lines))
    return 0


def _cmd_image_compress(args: argparse.Namespace) -> int:
    import streamcodec.image as image

    start = time.perf_counter()
    rgb = image.to_rgb(args.input)
    data = image.compress(rgb, bpp=args.bpp, iters=args.iters, deadline=args.deadline, model=args.model)
    elapsed = time.perf_counter() - start
    with _output(args, args.output) as path:
        Path(path).write_bytes(data)
    h, w = rgb.shape[:2]
    print(f"{args.input} -> {args.output}: {w}x{h} pixels, {len(data)} bytes, {8 * len(data) / (w * h):.3f} bits "
          f"per pixel, {elapsed:.1f} s")
    return 0


def _cmd_image_decompress(args: argparse.Namespace) -> int:
    import streamcodec.image as image

    rgb = image.decompress(args.input, model=args.model)
    with _output(args, args.output) as path:
        image.save_image(rgb, path)
    print(f"{args.input} -> {args.output}: {rgb.shape[1]}x{rgb.shape[0]} pixels")
    return 0


def _search_args(p, iters: int, iters_help: str, deadline_help: str, model: str) -> None:
    """The encoders' shared options: search iterations, deadline, model."""
    default = iters if iters is not None else f"{IMAGE_ITERS} for image-photo, {IMAGE_RD_ITERS} for image-rd"
    p.add_argument("--iters", type=int, default=iters, help=f"{iters_help} (default {default}; 0 sends the encoder output)")
    p.add_argument("--deadline", type=float, default=None, metavar="S", help=deadline_help)
    p.add_argument("--model", default=None, help=f"model name or folder (default {model})")


def _threads_arg(p, job: str) -> None:
    """--threads for a command that computes; `job` picks the default (streamcodec/threads.py)."""
    from streamcodec.threads import ENV

    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help=f"threads to compute with (default: the CPUs this process may use{', at most 2' if job == 'live' else ''}"
                        f"{'; each decodes one stream at a time' if job == 'decode' else ''}; or set {ENV})")
    p.set_defaults(job=job)


def _force_arg(p) -> None:
    p.add_argument("-y", "--force", action="store_true", help="replace the output file if it exists")


def _encoder_args(p) -> None:
    """The speech encoders' options: rate, DTX, enhancer."""
    p.add_argument("--kbps", type=float, default=SPEECH_KBPS,
                   help="rate on the wire in kbit/s, headers included (default 2.0; speech-2k holds 1.66..2.0)")
    p.add_argument("--no-dtx", action="store_true", help="code silent frames as speech instead of comfort noise")
    p.add_argument("--denoise", action=argparse.BooleanOptionalAction, default=None,
                   help="pass the input through the model's enhancer first, which takes out noise and "
                        "reverberation (default: on when the model has one, as speech-2k does; any receiver "
                        "of the model decodes the result)")


def _add_image(sub) -> None:
    img = sub.add_parser("image", help="compress photos offline (.sci files)")
    isub = img.add_subparsers(dest="image_command", metavar="STEP", required=True)
    c = isub.add_parser("compress", help="compress an image (PNG, JPEG, WebP, ...) to a .sci file")
    c.add_argument("input")
    c.add_argument("output")
    _force_arg(c)
    _threads_arg(c, "image")
    c.add_argument("--bpp", type=float, default=None, help=f"target bits per pixel (default {IMAGE_BPP})")
    _search_args(c, None, "latent search iterations", "search time limit in seconds", "image-photo")
    c.set_defaults(func=_cmd_image_compress)
    d = isub.add_parser("decompress", help="decompress a .sci file to an image (format from the name)")
    d.add_argument("input")
    d.add_argument("output", help="image to write, e.g. out.png")
    _force_arg(d)
    _threads_arg(d, "image")
    d.add_argument("--model", default=None)
    d.set_defaults(func=_cmd_image_decompress)


def _status(line: str) -> None:
    """A live status line on stderr (rewritten in place on a terminal)."""
    end = "\r" if sys.stderr.isatty() else "\n"
    print(f"\x1b[2K{line}" if end == "\r" else line, end=end, file=sys.stderr, flush=True)


def _broker_config(args: argparse.Namespace):
    from streamcodec.stream.mqtt import BrokerConfig

    return BrokerConfig.from_url(args.broker, ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file,
                                 username=args.username, password_file=args.password_file)


def _run_async(coro) -> int:
    """Run a long-lived command until it ends or gets SIGINT (Ctrl-C) or SIGTERM (systemctl stop,
    docker stop): both cancel it, so a receiver closes its recordings. Handlers are set explicitly,
    because a process started in the background by a script inherits SIGINT ignored."""
    import asyncio
    import signal

    async def main():
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            print("", file=sys.stderr)

    asyncio.run(main())
    return 0


def _cmd_send(args: argparse.Namespace) -> int:
    from streamcodec.speech import SpeechEncoder
    from streamcodec.stream import app
    from streamcodec.stream.devices import mic_source
    from streamcodec.stream.sender import file_source

    source = mic_source(args.device) if args.mic else file_source(args.file, fast=args.fast)
    _log_to_stderr()
    encoder = SpeechEncoder(args.model, iters=args.iters, deadline=args.deadline, kbps=args.kbps, dtx=not args.no_dtx,
                            denoise=args.denoise)

    async def run():
        stats = await app.send(_broker_config(args), args.channel, args.node, source, encoder, args.qos,
                               args.backlog, _status)
        print(f"\nsent {stats.sent} of {stats.frames} frames, dropped {stats.dropped}", file=sys.stderr)

    return _run_async(run())


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        k, n = -1, 0
    if not 0 <= k < n:
        raise StreamcodecError(f"--shard {text!r}: give K/N with 0 <= K < N, e.g. 0/3, 1/3 and 2/3 for three receivers")
    return k, n


def _log_to_stderr() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="streamcodec: %(message)s", stream=sys.stderr)


def _cmd_recv(args: argparse.Namespace) -> int:
    from streamcodec.stream import app
    from streamcodec.stream.receiver import Receiver

    factory = None
    if args.play:
        from streamcodec.stream.devices import SpeakerSink

        factory = lambda node, stream_id: SpeakerSink(args.device)  # noqa: E731
    limits = Limits(max_streams=args.max_streams, max_streams_per_node=args.max_streams_per_node,
                    new_streams_per_second=args.new_streams_per_second, max_delay=args.max_delay)
    receiver = Receiver(_broker_config(args), args.channel, args.node, model=args.model, sink_factory=factory,
                        out_dir=args.out, qos=args.qos, jitter_depth=args.jitter, limits=limits,
                        client_id=args.client_id, shard=_shard(args.shard), workers=args.threads)
    _log_to_stderr()
    return _run_async(app.receive(receiver, _status))


def _cmd_broker(args: argparse.Namespace) -> int:
    from streamcodec.stream import app

    return _run_async(app.broker_forever(args.host, args.port, print))


def _cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from streamcodec.stream import app

    print(f"broker + receiver + sender on {app.sample_path().name} (real time; --fast to hurry)")
    s = asyncio.run(app.demo(Path(args.out), args.model, args.fast, None, _status))
    # --fast sends frames before their audio would have been captured: no latency to speak of
    latency = "no latency (--fast)" if args.fast else f"last frame latency {s['latency']:.2f} s"
    print(f"\ndecoded {s['frames']} frames ({s['lost']} lost) at {s['mqtt_kbps']:.2f} kbps on the wire, MQTT framing "
          f"included (packets {s['kbps']:.2f}, payload {s['payload_kbps']:.2f}; the receiver counted "
          f"{s['received_mqtt_kbps']:.2f}); "
          f"{latency}; {s['broker']} broker; wrote {s['wav']}")
    return 0


def _add_stream(sub) -> None:
    def connection(p, default_node):
        p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port or mqtts://host:port")
        p.add_argument("--channel", default="default")
        p.add_argument("--node", default=default_node, help="this node's name" if default_node != "+" else
                       "node to follow (default +: every node of the channel)")
        p.add_argument("--qos", type=int, choices=(0, 1), default=0, help="0 live (default), 1 store-and-forward")
        p.add_argument("--ca-file", help="CA certificate for mqtts://")
        p.add_argument("--cert-file", help="client certificate for mqtts://")
        p.add_argument("--key-file", help="client key for mqtts://")
        p.add_argument("--username")
        p.add_argument("--password-file", help="file holding the password (or set STREAMCODEC_MQTT_PASSWORD)")
        p.add_argument("--password", action=_NoPasswordOption, help=argparse.SUPPRESS)
        p.add_argument("--model", default=None, help="model name or folder (default speech-2k)")
        p.add_argument("--device", default=None, help="sound device name or number (see python -m sounddevice)")

    send = sub.add_parser("send", help="stream speech from the microphone or a file to an MQTT broker")
    src = send.add_mutually_exclusive_group(required=True)
    src.add_argument("--mic", action="store_true", help="capture from the microphone")
    src.add_argument("--file", help="stream a sound file, paced in real time")
    send.add_argument("--fast", action="store_true", help="with --file: as fast as the encoder goes")
    send.add_argument("--iters", type=int, default=SPEECH_ITERS, help="search iterations per frame")
    send.add_argument("--deadline", type=float, default=0.2, metavar="S",
                      help="search time limit per frame (default 0.2 s: never fall behind)")
    send.add_argument("--backlog", type=int, default=64, help="frames kept while the broker is away")
    _encoder_args(send)
    _threads_arg(send, "live")
    connection(send, socket_node())
    send.set_defaults(func=_cmd_send)
    recv = sub.add_parser("recv", help="receive streams from an MQTT broker, to the speaker or WAV files")
    out = recv.add_mutually_exclusive_group()
    out.add_argument("--play", action="store_true", help="play through the speaker")
    out.add_argument("--out", default=".", help="folder for one WAV per stream (default .)")
    recv.add_argument("--jitter", type=int, default=2, help="frames a missing frame may be waited for")
    _threads_arg(recv, "decode")
    d = Limits()
    recv.add_argument("--max-streams", type=int, default=d.max_streams, metavar="N",
                      help=f"streams decoded at once, all nodes (default {d.max_streams}; more are refused)")
    recv.add_argument("--max-streams-per-node", type=int, default=d.max_streams_per_node, metavar="N",
                      help=f"default {d.max_streams_per_node}")
    recv.add_argument("--new-streams-per-second", type=float, default=d.new_streams_per_second, metavar="R",
                      help=f"new streams accepted per second (default {d.new_streams_per_second:g}, "
                           f"bursts of {d.new_stream_burst})")
    recv.add_argument("--max-delay", type=float, default=d.max_delay, metavar="S",
                      help=f"QoS 0: a frame that waited longer than this for the decoder is dropped as silence "
                           f"and counted (default {d.max_delay:g} s)")
    recv.add_argument("--shard", default="0/1", metavar="K/N",
                      help="take only the streams of shard K of N (0 <= K < N; a stable hash of node and stream "
                           "id): N receivers with shards 0/N .. N-1/N share a channel, each stream recorded once")
    recv.add_argument("--client-id", default=None,
                      help="MQTT client id (default with --qos 1: streamcodec-recv-<channel>-<node>, a persistent "
                           "session the broker keeps frames for while the receiver is down)")
    connection(recv, "+")
    recv.set_defaults(func=_cmd_recv)
    broker = sub.add_parser("broker", help="run the embedded MQTT broker (one-machine use)")
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--port", type=int, default=1883)
    broker.set_defaults(func=_cmd_broker)
    demo = sub.add_parser("demo", help="broker, receiver and sender on a bundled speech sample, in one command")
    demo.add_argument("--out", default="demo-out", help="folder for the decoded WAV (default demo-out)")
    demo.add_argument("--fast", action="store_true", help="do not pace the sample in real time")
    demo.add_argument("--model", default=None)
    _threads_arg(demo, "live")
    demo.set_defaults(func=_cmd_demo)


def socket_node() -> str:
    """This machine's short host name, made safe for an MQTT topic level."""
    import re
    import socket

    return re.sub(r"[/+#\s]", "-", socket.gethostname().split(".")[0]) or "node"


def _default_corpus(args: argparse.Namespace) -> None:
    if args.corpus is None:
        from streamcodec.train.debian import cache_dir

        args.corpus = cache_dir() / "corpus"


def _cmd_train_corpus(args: argparse.Namespace) -> int:
    from streamcodec.train import corpus

    _default_corpus(args)
    corpus.main(["--out", str(args.corpus), "--sentences", str(args.sentences), "--workers", str(args.workers)])
    return 0


def _cmd_train_speech(args: argparse.Namespace) -> int:
    from streamcodec.train import speech

    _default_corpus(args)
    speech.main(args)
    return 0


def _cmd_train_enhancer(args: argparse.Namespace) -> int:
    from streamcodec.train import enhancer

    _default_corpus(args)
    enhancer.main(args)
    return 0


def _cmd_train_encoder(args: argparse.Namespace) -> int:
    from streamcodec.train import encoder

    _default_corpus(args)
    encoder.main(args)
    return 0


def _cmd_train_decoder(args: argparse.Namespace) -> int:
    from streamcodec.train import decoder

    _default_corpus(args)
    decoder.main(args)
    return 0


def _cmd_train_receiver(args: argparse.Namespace) -> int:
    from streamcodec.train import receiver

    _default_corpus(args)
    receiver.main(args)
    return 0


def _cmd_train_photos(args: argparse.Namespace) -> int:
    from streamcodec.train import photos

    photos.main(([] if args.photos is None else ["--out", str(args.photos)])
                + ([] if args.short_sides is None else ["--short-sides", *map(str, args.short_sides)]))
    return 0


def _cmd_train_image_rd(args: argparse.Namespace) -> int:
    from streamcodec.train import image_rd

    image_rd.main(args.options)
    return 0


def _cmd_train_image(args: argparse.Namespace) -> int:
    from streamcodec.train import image

    image.main(args)
    return 0


def _cmd_train_noise(args: argparse.Namespace) -> int:
    from streamcodec.train import noise
    from streamcodec.train.debian import cache_dir

    noise.build(args.noise or cache_dir() / "noise")
    return 0


def _cmd_train_recipe(args: argparse.Namespace) -> int:
    from streamcodec.train import recipe

    ran = recipe.run(args.recipe, args.runs, args.tiny, args.out,
                     {"corpus": args.corpus, "photos": args.photos, "noise": args.noise})
    print(f"recipe {args.recipe}: {len(ran)} stages run" + (f" ({', '.join(ran)})" if ran else ", all were done"))
    return 0


def _cmd_train_export(args: argparse.Namespace) -> int:
    if args.average and args.kind not in ("encoder", "decoder"):
        raise StreamcodecError("--average is for --kind encoder or decoder only (runs fine-tuned from the same start)")
    if args.kind == "image":
        from streamcodec.train import image

        out = image.export(args.run or Path("runs/image"), args.out or Path("models/image-photo"), args.photos)
    elif args.kind == "enhancer":
        from streamcodec.train import enhancer

        _default_corpus(args)
        out = enhancer.export(args.run or Path("runs/enhancer"), args.out or Path("models/speech-2k"), args.corpus,
                              args.noise)
    elif args.kind == "encoder":
        from streamcodec.train import encoder

        _default_corpus(args)
        out = encoder.export(args.run or Path("runs/encoder"), args.out or Path("models/speech-2k"), args.corpus,
                             args.average, args.noise)
    elif args.kind == "decoder":
        from streamcodec.train import decoder

        _default_corpus(args)
        out = decoder.export(args.run or Path("runs/decoder"), args.out or Path("models/speech-2k"), args.corpus,
                             args.average, args.noise)
    elif args.kind == "receiver":
        from streamcodec.train import receiver

        _default_corpus(args)
        out = receiver.export(args.run or Path("runs/receiver"), args.out or Path("models/speech-2k"), args.corpus,
                              args.noise)
    else:
        from streamcodec.train import speech

        _default_corpus(args)
        out = speech.export(args.run or Path("runs/speech"), args.out or Path("models/speech-2k"), args.corpus)
    print(f"wrote {out}")
    return 0


def _stage_args(p) -> None:
    p.add_argument("--stage", type=int, choices=(1, 2, 3), default=1,
                   help="speech: 3 fine-tunes G on the latents the codec's search finds")
    p.add_argument("--steps", type=int, default=0, help="total steps for the stage (default 200000 / 20000)")
    p.add_argument("--minutes", type=float, default=0, help="stop cleanly after this wall time")
    _threads_arg(p, "file")


NOISE_HELP = "noise bank folder with train/*.npy (default <cache>/noise, built by python -m streamcodec.train.noise)"


def _part_parser(tsub, name: str, help: str, func):
    """A network trained beside a shipped speech model (resumable run folder)."""
    p = tsub.add_parser(name, help=help)
    p.add_argument("--run", type=Path, default=Path(f"runs/{name}"))
    p.add_argument("--corpus", type=Path, default=None)
    p.add_argument("--noise", type=Path, default=None, help=NOISE_HELP)
    p.add_argument("--model", default="speech-2k", help="for a new run: the speech model it serves")
    p.add_argument("--steps", type=int, default=0, help="total steps (default 200000)")
    p.add_argument("--minutes", type=float, default=0, help="stop cleanly after this wall time")
    _threads_arg(p, "file")
    p.set_defaults(func=func)
    return p


def _loudness_arg(p) -> None:
    p.add_argument("--loudness", type=float, default=0.0, help="for a new run: weight the L1 loss by "
                   "exp(LOUDNESS x target) as the search does (default 0: plain L1; the search uses 3)")


def _add_train(sub) -> None:
    train = sub.add_parser("train", help="build the training data and train models (see streamcodec/train)")
    tsub = train.add_subparsers(dest="train_command", metavar="STEP", required=True)
    corpus_default = None  # <cache>/corpus, resolved by the command
    photos_help = "photo set folder (default <cache>/photos)"
    c = tsub.add_parser("corpus", help="fetch Debian speech packages, synthesise TTS speech, cache log-mel")
    c.add_argument("--corpus", type=Path, default=corpus_default)
    c.add_argument("--sentences", type=int, default=1200, help="synthetic English sentences (default 1200)")
    c.add_argument("--workers", type=int, default=2)
    c.set_defaults(func=_cmd_train_corpus)
    s = tsub.add_parser("speech", help="train the speech model (resumes from the run folder)")
    s.add_argument("--run", type=Path, default=Path("runs/speech"))
    s.add_argument("--corpus", type=Path, default=corpus_default)
    _stage_args(s)
    s.add_argument("--arch", choices=("conv1d", "conv2d"), default="conv1d", help="for a new run only")
    s.add_argument("--field", action="store_true",
                   help="for a new run: level normalisation and field augmentation (noise, reverb, band limits)")
    s.add_argument("--init-from", default=None, metavar="MODEL", help="for a new run: start from a shipped model's E and G")
    s.set_defaults(func=_cmd_train_speech)
    n = _part_parser(tsub, "enhancer", "train the speech enhancer in front of a model's encoder (resumes)",
                     _cmd_train_enhancer)
    n.add_argument("--decay-steps", type=int, default=0, metavar="N",
                   help="anneal the step size (cosine, to a tenth) over the next N steps, then stop")
    n.add_argument("--from-shipped", action="store_true", help="for a new run: start from the model's enhancer")
    n.add_argument("--high-band-weight", type=float, default=1.0, metavar="W",
                   help="for a new run: L1 weight of the bands above 4 kHz against those below (default 1)")
    n.add_argument("--over-weight", type=float, default=1.0, metavar="W",
                   help="for a new run: L1 weight of an estimate above the clean target (noise left in) against "
                   "one below (default 1)")
    n.add_argument("--over-high-only", action="store_true", help="for a new run: --over-weight above 4 kHz only")
    enc = _part_parser(tsub, "encoder", "fine-tune a copy of E to start the codec's search where it would go (resumes)",
                       _cmd_train_encoder)
    enc.add_argument("--seed", type=int, default=0, help="for a new run: its training crops (default 0; runs of "
                       "several seeds can be averaged at export)")
    enc.add_argument("--amortise", type=int, default=0, metavar="FRAMES", help="for a new run: start from the shipped "
                     "copy and regress it toward where longer searches of FRAMES field crops end (coding them is not "
                     "counted in --minutes; default 0: learn the search's first score)")
    enc.add_argument("--amortise-iters", type=int, default=32, help="for a new run with --amortise: those searches' "
                     "iterations (default 32)")
    r = _part_parser(tsub, "decoder", "fine-tune a copy of G on the codec's searched latents, for receivers (resumes)",
                     _cmd_train_decoder)
    r.add_argument("--frames", type=int, default=8000, help="for a new run: training frames to code (default 8000; "
                   "coding them is not counted in --minutes)")
    r.add_argument("--babble-frames", type=int, default=0, help="for a new run: babble-only training frames to code "
                   "beside them (default 0)")
    r.add_argument("--hard-frames", type=int, default=0, help="for a new run: hard training frames to code beside them "
                   "(0-10 dB SNR noise, half reverberant; default 0)")
    _loudness_arg(r)
    r.add_argument("--start", choices=("generator", "decoder"), default="generator", help="for a new run: fine-tune "
                   "G (default) or the receiver's generator the model ships (a next round on its own packets)")
    rv = _part_parser(tsub, "receiver", "train the receivers' large decoder on the codec's packets, frames with the "
                      "end of the frame before (resumes)", _cmd_train_receiver)
    rv.add_argument("--sequences", type=int, default=3000, help="for a new run: training sequences of 4 frames to "
                    "code (default 3000; coding them is not counted in --minutes)")
    rv.add_argument("--sequence-frames", type=int, default=4, help="for a new run: consecutive frames per sequence "
                    "(default 4)")
    rv.add_argument("--dilations", type=int, nargs="+", default=[1, 2, 4, 8], help="for a new run: those of each "
                    "stage's residual blocks (default 1 2 4 8; the first two are the receiver's generator's)")
    rv.add_argument("--context", type=int, default=8, help="for a new run: latent steps of the frame before it reads "
                    "(default 8; 0: each frame alone)")
    rv.add_argument("--adversarial", type=float, default=0.0, help="for a new run: weight of G's adversarial and "
                    "feature-matching terms against a new discriminator (default 0: L1 alone; 1: G's weights)")
    _loudness_arg(rv)
    rv.add_argument("--lr", type=float, default=1e-4, help="for a new run: step size (default 0.0001)")
    rv.add_argument("--clean", type=float, default=0.5, help="for a new run: share of pairs coded from clean speech, "
                    "the rest degraded by noise, reverberation or band limits (default 0.5)")
    rv.add_argument("--pairs", type=Path, default=None, help="for a new run: folder of coded pairs, shared with other "
                    "runs of the same model and --sequence-frames (default RUN/pairs)")
    nb = tsub.add_parser("noise", help="fetch the Debian noise packages and build the noise bank")
    nb.add_argument("--noise", type=Path, default=None, help="noise bank folder (default <cache>/noise)")
    nb.set_defaults(func=_cmd_train_noise)
    p = tsub.add_parser("photos", help="fetch the Debian photo packages and build the photo set")
    p.add_argument("--photos", type=Path, default=None, help=photos_help)
    p.add_argument("--short-sides", type=int, nargs="+", default=None,
                   help="scales each training picture is kept at (short side, pixels at most)")
    p.set_defaults(func=_cmd_train_photos)
    i = tsub.add_parser("image", help="train the image model (resumes from the run folder)")
    i.add_argument("--run", type=Path, default=Path("runs/image"))
    i.add_argument("--photos", type=Path, default=None, help=photos_help)
    _stage_args(i)
    i.set_defaults(func=_cmd_train_image)
    ir = tsub.add_parser("image-rd", help="train or export the rate-distortion photo model (options: "
                         "python -m streamcodec.train.image_rd --help)", add_help=False)
    ir.set_defaults(func=_cmd_train_image_rd)
    rc = tsub.add_parser("recipe", help="run or resume every stage of a model's recipe file (recipes/*.toml)")
    rc.add_argument("recipe", type=Path, help="e.g. recipes/speech-2k.toml")
    rc.add_argument("--runs", type=Path, required=True, help="folder for the stages' run folders (resumes from it)")
    rc.add_argument("--out", type=Path, default=None, help="where the model is written (default: the recipe's out)")
    rc.add_argument("--tiny", action="store_true", help="a few steps per stage (each stage's tiny_steps): checks "
                    "that the recipe runs end to end")
    for name in ("corpus", "photos", "noise"):
        rc.add_argument(f"--{name}", type=Path, default=None, help=f"a {name} folder built already (its stage is "
                        "skipped; default <cache>/" + name + ")")
    rc.set_defaults(func=_cmd_train_recipe)
    e = tsub.add_parser("export", help="write the shipped model from a run")
    e.add_argument("--kind", choices=("speech", "enhancer", "encoder", "decoder", "receiver", "image"), default="speech")
    e.add_argument("--average", type=Path, nargs="+", default=[], metavar="RUN",
                   help="encoder, decoder: average the run's weights with these runs' (fine-tuned from the same start)")
    e.add_argument("--run", type=Path, default=None, help="default runs/speech or runs/image")
    e.add_argument("--corpus", type=Path, default=corpus_default)
    e.add_argument("--photos", type=Path, default=None, help=photos_help)
    e.add_argument("--noise", type=Path, default=None, help=NOISE_HELP)
    e.add_argument("--out", type=Path, default=None, help="default models/speech-2k (speech, enhancer, encoder, decoder, receiver) or models/image-photo")
    e.set_defaults(func=_cmd_train_export)


class _Parser(argparse.ArgumentParser):
    """No abbreviated options (`--pass` must not mean --password-file), and an error about
    unknown arguments names the options only: their values may be secrets."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        prefix = "unrecognized arguments:"
        if message.startswith(prefix):
            names = [t.split("=")[0] for t in message[len(prefix):].split() if t.startswith("-")]
            message = f"{prefix} {' '.join(names) or '(values not shown)'}"
        super().error(message)


class _NoPasswordOption(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        raise argparse.ArgumentError(self, "a password on the command line is visible to every user: set "
                                           "STREAMCODEC_MQTT_PASSWORD or use --password-file")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="streamcodec", description="Speech at 2 kbps, live over MQTT or offline.")
    parser.add_argument("--version", action="version", version=f"streamcodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    vocode = sub.add_parser("vocode", help="round-trip a speech file through the log-mel signal path (no compression)")
    vocode.add_argument("input", help="audio file (WAV, FLAC, OGG; any rate, mono or stereo)")
    vocode.add_argument("output", help="16 kHz mono WAV to write")
    _force_arg(vocode)
    _threads_arg(vocode, "file")
    vocode.add_argument("--griffin-lim", type=int, default=16, metavar="N", help="refinement iterations (default 16)")
    vocode.set_defaults(func=_cmd_vocode)
    enc = sub.add_parser("encode", help="compress a speech file to a .scf container (2 kbps)")
    enc.add_argument("input", help="audio file (WAV, FLAC, OGG; any rate, mono or stereo)")
    enc.add_argument("output", help="container file to write (.scf)")
    _force_arg(enc)
    _threads_arg(enc, "file")
    _search_args(enc, SPEECH_ITERS, "search iterations per frame", "search time limit per frame batch", "speech-2k")
    _encoder_args(enc)
    enc.set_defaults(func=_cmd_encode)
    dec = sub.add_parser("decode", help="decompress a .scf container to a 16 kHz WAV")
    dec.add_argument("input")
    dec.add_argument("output", help="audio file to write (.wav, or .flac)")
    _force_arg(dec)
    _threads_arg(dec, "file")
    dec.add_argument("--griffin-lim", type=int, default=SPEECH_GRIFFIN_LIM, metavar="N",
                     help=f"phase refinement iterations (default {SPEECH_GRIFFIN_LIM})")
    dec.add_argument("--postfilter", type=float, default=SPEECH_POSTFILTER, metavar="A",
                     help=f"spectral-contrast post-filter on the decoded spectrum (default {SPEECH_POSTFILTER}; 0 is off)")
    dec.add_argument("--model", default=None)
    dec.set_defaults(func=_cmd_decode)
    _add_image(sub)
    inf = sub.add_parser("info", help="describe a streamcodec file (.scf or .sci)")
    inf.add_argument("input")
    inf.set_defaults(func=_cmd_info)
    _add_stream(sub)
    _add_train(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "func", None) is _cmd_train_image_rd:
        args.options = extra  # its options are train/image_rd.py's (which imports torch)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        if getattr(args, "job", None):
            from streamcodec import threads

            args.threads = threads.choose(args.job, args.threads)
            # a receiver's threads decode streams, an encoder's code frames; a live sender codes
            # one frame at a time, so BLAS gets its threads there (and image-rd sets its own)
            threads.configure(args.threads, blas=args.threads if args.job == "live" else 1)
        return args.func(args)
    except StreamcodecError as exc:
        print(f"streamcodec: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # missing files, full disks, permissions
        print(f"streamcodec: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2
