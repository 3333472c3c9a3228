"""Speech and photos come only from Debian packages (see DESIGN.md): fetched with `apt-get
download`, unpacked with `dpkg-deb -x`, never installed. Everything lands in a cache directory."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from streamcodec.dsp.audio import to_codec_audio
from streamcodec.errors import StreamcodecError


class CorpusError(StreamcodecError):
    """A corpus source could not be fetched or decoded."""


def cache_dir() -> Path:
    """STREAMCODEC_CACHE, or ~/.cache/streamcodec."""
    return Path(os.environ.get("STREAMCODEC_CACHE", Path.home() / ".cache" / "streamcodec"))


def fetch_package(name: str, root: Path | None = None) -> Path:
    """Download and unpack Debian package `name` once; return the folder it was unpacked into."""
    root = (root or cache_dir()) / "debian"
    target = root / name
    if (target / ".complete").exists():
        return target
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise CorpusError(f"{tool} not found: corpus sources are Debian packages, run on Debian")
    proc = subprocess.run(["apt-get", "download", name], cwd=debs, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CorpusError(f"apt-get download {name} failed (run 'apt-get update' first?): {proc.stderr.strip()}")
    deb = max(debs.glob(f"{name}_*.deb"), key=lambda p: p.stat().st_mtime)
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    (target / ".complete").touch()
    return target


def read_audio(path: Path) -> np.ndarray:
    """Any file ffmpeg reads (ogg, mp3, raw G.722 by extension) -> float32 16 kHz mono."""
    path = Path(path)
    if path.suffix in (".wav", ".flac"):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        return to_codec_audio(data, rate)
    if shutil.which("ffmpeg") is None:
        raise CorpusError("ffmpeg not found: install the Debian package ffmpeg")
    fmt = ["-f", "g722"] if path.suffix == ".g722" else []
    cmd = ["ffmpeg", "-v", "error", *fmt, "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise CorpusError(f"ffmpeg could not decode {path}: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, np.float32).copy()
