"""Seconds per image-rd training step (the shipped network's width, batch 8 crops of 128 px, forward,
backward and Adam), in float32 and with --bf16, on 1 and 2 threads, on a quiet machine and beside a
neighbour process that spins on one core. Each cell is a fresh process: the median of 20 steps after
3 warm-up steps, on random pixels (a step's cost does not depend on what the pixels show).

    .venv/bin/python -m benchmarks.image_rd_step      # writes benchmarks/results/image_rd_step.md
"""

import json
import platform
import subprocess
import sys

from benchmarks import write_result

TIMER = """
import json, sys, time
import torch
from streamcodec.nets.image_rd import RDModel
from streamcodec.train.image_rd import RDTrainConfig, rd_loss
threads, bf16 = int(sys.argv[1]), sys.argv[2] == "1"
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = RDTrainConfig()
model = RDModel(cfg.net)
opt = torch.optim.Adam(model.parameters(), cfg.lr)
times = []
for i in range(23):
    x = torch.rand(cfg.batch, 3, cfg.crop, cfg.crop)
    quality = torch.rand(cfg.batch) * (len(cfg.net.lambdas) - 1)
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _ = rd_loss(model, x, quality)
    opt.zero_grad()
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t)
print(json.dumps(sorted(times[3:])[len(times[3:]) // 2]))
"""


def step_seconds(threads: int, bf16: bool) -> float:
    out = subprocess.run([sys.executable, "-c", TIMER, str(threads), "1" if bf16 else "0"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    rows = {}
    for busy in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for threads in (1, 2):
                for bf16 in (False, True):
                    rows[threads, bf16, busy] = step_seconds(threads, bf16)
        finally:
            if spinner:
                spinner.kill()
                spinner.wait()
    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    cpu = ", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags) or "no bfloat16 instructions"
    lines = ["# image-rd training step: seconds per step", "",
             f"Batch 8 x 128x128, width 96, forward + backward + Adam; median of 20 steps, each cell a fresh "
             f"process; CPU: {cpu}. The busy neighbour is a process spinning on one core.", "",
             "| threads | float32 quiet | --bf16 quiet | float32 busy | --bf16 busy | bf16 speed-up quiet / busy |",
             "|---|---|---|---|---|---|"]
    for threads in (1, 2):
        f, b, fb, bb = (rows[threads, bf16, busy] for busy in (False, True) for bf16 in (False, True))
        lines.append(f"| {threads} | {f:.3f} | {b:.3f} | {fb:.3f} | {bb:.3f} | {f / b:.2f}x / {fb / bb:.2f}x |")
    write_result("image_rd_step.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
