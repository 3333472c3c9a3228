"""Background noise for training and for the robustness benchmark (issue 14), as log-mel.

Real non-speech recordings come from Debian packages (training: music on hold, two games' music
and effects, and a city game's ambiences of machines, traffic, water and wind, those of people's
places left out so that no speech and no crowd gets in; test: another game's music and
effects, applause among them); the
synthetic kinds (white, pink, brown, mains hum) are generated here. The "train" set feeds the
training augmentation; the "test" set holds recordings the model never hears, for
benchmarks/speech_robustness.py. Babble is made on the fly from other corpus speakers.

    .venv/bin/python -m streamcodec.train.noise      # -> <cache>/noise/{train,test}/*.npy (+ .wav)
"""

import time
from pathlib import Path

import numpy as np
import soundfile as sf

from streamcodec.dsp import logmel
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.train.debian import cache_dir, fetch_package, read_audio

# lincity-ng's ambiences without people (crowds, schools, homes, markets, clinics are left out)
_CITY = "usr/share/games/lincity-ng/sounds/"
_CITY_SOUNDS = ("Blacksmith?", "Build?", "CoalMine?", "DirtTrack?", "Farm?", "Fire?", "Industry*", "Mill?",
                "OreMine?", "OrganicFarm?", "Parkland*", "PowerCoal*", "PowerSolar?", "RailTrain?", "Raze?",
                "Recycle?", "Rocket*", "Substation?", "Tip?", "Trafic*", "Water?", "WindMill*")

# package, globs under the unpacked tree, split, licence (Debian copyright file)
SOURCES = [
    ("asterisk-moh-opsound-g722", ("usr/share/asterisk/moh/*.g722",), "train", "CC-BY-SA-3.0"),
    ("colobot-common-sounds", ("usr/share/games/colobot/*/*.*",), "train", "GPL-3+"),  # a game's music and effects
    ("extremetuxracer-data", ("usr/share/games/etr/music/*.ogg", "usr/share/games/etr/sounds/*_slide.wav"),
     "train", "GPL-2+"),  # a game's music and sliding on snow, ice, mud, leaves
    ("lincity-ng-data", tuple(f"{_CITY}{name}.wav" for name in _CITY_SOUNDS), "train", "GPL-2+"),
    ("frozen-bubble-data", ("usr/share/games/frozen-bubble/snd/*.ogg",), "test", "GPL-2+"),
]
SYNTHETIC_SECONDS = 120


def synthetic(kind: str, seconds: float, seed: int) -> np.ndarray:
    """White, pink or brown noise, or 50 Hz mains hum with harmonics and a little buzz; unit RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        x = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 6.3)) / h for h in range(1, 12))
        x = x + 0.05 * rng.standard_normal(n)
    else:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
        spec *= {"white": 1.0, "pink": f**-0.5, "brown": 1.0 / f}[kind]
        x = np.fft.irfft(spec, n)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def _real(package: str, patterns: tuple[str, ...]) -> np.ndarray:
    root = fetch_package(package)
    clips = []
    for path in sorted({p for pattern in patterns for p in root.glob(pattern)}):
        if path.is_file():
            try:
                clips.append(read_audio(path))
            except Exception as exc:  # a file ffmpeg cannot read is reported, not fatal
                print(f"skipped {path.name}: {exc}")
    clips = [c for c in clips if len(c) > SAMPLE_RATE // 4 and np.abs(c).max() > 1e-3]
    return np.concatenate([c / np.sqrt(np.mean(c**2) + 1e-12) for c in clips]).astype(np.float32)


def build(out: Path) -> dict:
    made = {}
    for split in ("train", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
    for i, kind in enumerate(("white", "pink", "brown", "hum")):
        made[f"train/{kind}"] = synthetic(kind, SYNTHETIC_SECONDS, seed=i)
        made[f"test/{kind}"] = synthetic(kind, 30, seed=100 + i)
    for package, patterns, split, _ in SOURCES:
        made[f"{split}/{package}"] = _real(package, patterns)
    for name, audio in made.items():
        np.save(out / f"{name}.npy", logmel(audio).astype(np.float16))
        if name.startswith("test/"):
            sf.write(out / f"{name}.wav", audio * 0.1, SAMPLE_RATE, subtype="FLOAT")
        print(f"{name:40s} {len(audio) / SAMPLE_RATE / 60:6.1f} min", flush=True)
    return made


def load_bank(split: str, root: Path | None = None) -> dict[str, np.ndarray]:
    """{name: (frames, mels) float16 log-mel at unit RMS} of one split."""
    folder = (root or cache_dir() / "noise") / split
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise FileNotFoundError(f"no noise in {folder}: run python -m streamcodec.train.noise")
    return {f.stem: np.load(f) for f in files}


if __name__ == "__main__":
    start = time.monotonic()
    build(cache_dir() / "noise")
    print(f"built in {time.monotonic() - start:.0f} s")
