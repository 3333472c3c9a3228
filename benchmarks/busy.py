"""Start-up and speed on a busy machine (issue 13), each command a fresh process:

- start-up: `streamcodec --help`, `streamcodec info` of a speech file, `streamcodec encode` of a
  2 s message, a sender streaming that message to Mosquitto as fast as it codes, and a receiver
  that starts, warms up and idles for 5 s (wall time, the best of 3, and peak resident memory);
- `streamcodec encode` of 28 s of speech and `streamcodec image compress` of a 512x512 photo on a
  quiet machine and beside a neighbour process that spins on one core, with streamcodec's thread
  policy (streamcodec/threads.py: the CPUs the process may use, idle threads sleep, OpenBLAS at one
  thread and the speech encoder's frames in worker threads). The command line always applies it, so
  there is no "library defaults" row any more (earlier runs had one that measured the same thing).

    .venv/bin/python -m benchmarks.busy        # writes benchmarks/results/busy.md
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from benchmarks import write_result
from streamcodec.stream.app import sample_path
from streamcodec.threads import available_cpus
from streamcodec.train.debian import fetch_package
from tests.brokers import Mosquitto

def inputs(folder: Path) -> dict[str, list[str]]:
    audio, rate = sf.read(sample_path(), dtype="float32")
    sf.write(folder / "speech.wav", np.tile(audio, 3)[: 28 * rate], rate)
    root = fetch_package("lomiri-wallpapers-20.04")
    with Image.open(next(root.rglob("Infinite-Sea_by_Aury88.jpg"))) as im:
        im.convert("RGB").crop((0, 0, 512, 512)).save(folder / "photo.png")
    return {"encode 28 s of speech": ["encode", str(folder / "speech.wav"), str(folder / "out.scf"), "-y"],
            "image compress 512x512": ["image", "compress", str(folder / "photo.png"), str(folder / "out.sci"), "-y"]}


def startup(folder: Path) -> list[tuple[str, float, float]]:
    """(command, best wall time of 3, its peak resident memory in MiB) for the quick commands."""
    audio, rate = sf.read(sample_path(), dtype="float32")
    sf.write(folder / "two.wav", audio[: 2 * rate], rate)
    run(["encode", str(folder / "two.wav"), str(folder / "two.scf"), "-y"], {})
    rows = []
    mosquitto = Mosquitto(folder).start()
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"
    try:
        for name, args, stop_after in (
                ("streamcodec --help", ["--help"], None),
                ("streamcodec info two.scf", ["info", str(folder / "two.scf")], None),
                ("streamcodec encode of a 2 s message", ["encode", str(folder / "two.wav"), str(folder / "two.scf"),
                                                         "-y"], None),
                ("streamcodec send --file of the 2 s message --fast", ["send", "--file", str(folder / "two.wav"),
                                                                       "--fast", "--broker", broker], None),
                ("streamcodec recv, started, warmed up, 5 s idle", ["recv", "--broker", broker, "--out",
                                                                    str(folder / "rec")], 5.0)):
            rows.append((name, *min(run(args, {}, stop_after) for _ in range(3))))
    finally:
        mosquitto.stop()
    return rows


# A small launcher forks and runs the command: Linux reports a child's peak memory as at least what
# its parent held when it forked, so the measuring process itself must stay small.
# A process that runs until stopped gets SIGINT (Ctrl-C) after `stop_after` seconds.
LAUNCH = """import os, signal, sys, time
stop_after = float(sys.argv[1])
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "streamcodec", *sys.argv[2:]])
if stop_after:
    time.sleep(stop_after)
    os.kill(pid, signal.SIGINT)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(time.perf_counter() - start, usage.ru_maxrss, 0 if stop_after and code in (-2, 130) else code)
"""


def run(args: list[str], env: dict, stop_after: float | None = None) -> tuple[float, float]:
    """Wall time and peak resident memory (MiB) of `streamcodec ARGS` in a fresh process."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("STREAMCODEC_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                          "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", LAUNCH, str(stop_after or 0), *args], env={**clean, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    seconds, rss_kib, code = float(out[-3]), int(out[-2]), int(out[-1])
    if code:
        raise RuntimeError(f"streamcodec {' '.join(args)} failed ({code})")
    return seconds, rss_kib / 1024


def timed(args: list[str], env: dict) -> float:
    return run(args, env)[0]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        starts = startup(Path(folder))
        jobs = inputs(Path(folder))
        for job, args in jobs.items():
            quiet = timed(args, {})
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                busy = timed(args, {})
            finally:
                spinner.kill()
                spinner.wait()
            rows.append((job, quiet, busy))
            print(rows[-1], flush=True)
    lines = ["Start-up, quiet machine (wall time and peak resident memory of the fastest of 3 runs):", "",
             "| command | wall time | peak resident memory |", "|---|---|---|"]
    lines += [f"| {name} | {'(stopped)' if 'idle' in name else f'{t:.2f} s'} | {rss:.0f} MiB |" for name, t, rss in starts]
    lines += ["", f"{available_cpus()} CPUs; each run a fresh process (model loading included); the busy neighbour "
              "is a process spinning on one core.", "",
             "| job | quiet | beside a busy neighbour | slow-down |", "|---|---|---|---|"]
    lines += [f"| {job} | {q:.1f} s | {b:.1f} s | {b / q:.2f}x |" for job, q, b in rows]
    write_result("busy.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
