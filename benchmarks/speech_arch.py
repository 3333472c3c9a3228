"""Architecture comparison for the speech generator: each candidate trains stage 1 (reconstruction
only) for the same wall time on the corpus; we report development-set L1 on log-mel against the
search-step cost. This picks the architecture of the shipped model.

    .venv/bin/python benchmarks/speech_arch.py --minutes 6   # writes benchmarks/results/speech_arch.md
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import write_result
from benchmarks.speech_nets import search_step_ms
from streamcodec.dsp.params import BLOCK_FRAMES, N_MELS
from streamcodec.nets.speech import SpeechNetConfig, latent_shape
from streamcodec.train.debian import cache_dir
from streamcodec.train.speech import TrainConfig, Trainer

CANDIDATES = [SpeechNetConfig("conv1d", 16, 256, 2), SpeechNetConfig("conv2d", 32)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=6)
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus")
    args = parser.parse_args()
    torch.set_num_threads(2)
    lines = [f"Stage 1 (L1 only) for {args.minutes:g} min each, batch 16, 64-frame crops, 2 threads.", "",
             "| G | steps | dev L1 (log-mel, [-1, 1]) | search step (ms) |", "|---|---|---|---|"]
    for cfg in CANDIDATES:
        with tempfile.TemporaryDirectory() as run:
            trainer = Trainer(Path(run), args.corpus, TrainConfig(net=cfg, adv_start=10**9))
            start = time.time()
            trainer.train_stage(1, steps=10**9, minutes=args.minutes)
            steps = trainer.state["stage_steps"]["1"]
            dev = trainer.dev_metrics()["dev_l1"]
            z = torch.randn(1, *latent_shape(cfg, BLOCK_FRAMES))
            x = torch.rand(1, N_MELS, BLOCK_FRAMES) * 2 - 1
            ms = search_step_ms(trainer.G, z, x)
        lines.append(f"| {cfg.arch} w{cfg.width} b{cfg.blocks_per_stage} | {steps} | {dev:.4f} | {ms:.1f} |")
        print(lines[-1], f"({time.time() - start:.0f} s)", flush=True)
    text = "\n".join(lines) + "\n"
    write_result("speech_arch.md", text)


if __name__ == "__main__":
    main()
