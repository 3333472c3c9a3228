"""Cost of the speech networks: parameters, multiply-accumulates per 1.024 s frame, and the time
of one latent-search step (G forward plus the gradient with respect to z, batch 1) with 2
threads, in numpy (nets/runtime.py, what the codec runs) beside torch (what training runs); and
the same for the enhancer as shipped (one forward pass) and for candidate large receiver decoders
(train/receiver.py: one forward pass of a frame with the steps of the frame before it reads).

    .venv/bin/python -m benchmarks.speech_nets     # writes benchmarks/results/speech_nets.md
"""

import time

import numpy as np
import torch

from benchmarks import write_result
from streamcodec import threads
from streamcodec.core.search import GeneratorObjective
from streamcodec.dsp.params import BLOCK_FRAMES, N_MELS
from streamcodec.nets import runtime
from streamcodec.nets.speech import Enhancer, EnhancerConfig, Generator1d, SpeechNetConfig, build, count_macs, latent_shape
from streamcodec.nets.speech_config import ReceiverConfig

CANDIDATES = [
    SpeechNetConfig("conv1d", 16, 128, 1),
    SpeechNetConfig("conv1d", 16, 192, 1),
    SpeechNetConfig("conv1d", 16, 256, 2),
    SpeechNetConfig("conv2d", 32),
]
RECEIVERS = [ReceiverConfig((1, 2), 0), ReceiverConfig((1, 2, 4, 8), 0), ReceiverConfig((1, 2, 4, 8), 8),
             ReceiverConfig((1, 2, 4, 8, 1, 2), 8)]


def median_ms(fn, repeats=50) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * sorted(times)[len(times) // 2]


def torch_step(G, z, x):
    G.requires_grad_(False)
    z = z.clone().requires_grad_(True)
    return lambda: torch.autograd.grad((G(z) - x).pow(2).mean(), z)[0]


def weights(module: torch.nn.Module, prefix: str = "") -> dict:
    return {prefix + k: v.detach().numpy() for k, v in module.state_dict().items()}


def main() -> None:
    threads.configure(2, blas=2)  # one frame, two BLAS threads: what a live sender runs
    x = torch.rand(1, N_MELS, BLOCK_FRAMES) * 2 - 1
    lines = ["| G | latent | G params | G MACs / frame | E MACs / frame | search step, numpy (ms) | search step, torch (ms) |",
             "|---|---|---|---|---|---|---|"]
    for cfg in CANDIDATES:
        E, G = build(cfg)
        z = torch.randn(1, *latent_shape(cfg, BLOCK_FRAMES))
        params = sum(p.numel() for p in G.parameters())
        numpy_ms = "-"
        if cfg.arch == "conv1d":
            objective = GeneratorObjective(runtime.generator(weights(G, "generator."), cfg.dilations), x.numpy())
            numpy_ms = f"{median_ms(lambda: objective.loss_and_grad(z.numpy())):.1f}"
        lines.append(
            f"| {cfg.arch}{f' w{cfg.width} b{cfg.blocks_per_stage}' if cfg.arch == 'conv1d' else ''} | "
            f"{tuple(z.shape[1:])} | {params / 1e6:.2f} M | {count_macs(G, z) / 1e6:.0f} M | "
            f"{count_macs(E, x) / 1e6:.0f} M | {numpy_ms} | {median_ms(torch_step(G, z, x)):.1f} |"
        )
    cfg = EnhancerConfig()
    enhancer = Enhancer(cfg).eval()
    enhancer_np = runtime.enhancer(weights(enhancer), cfg.dilations)
    with torch.no_grad():
        torch_ms = median_ms(lambda: enhancer(x), 20)
    numpy_ms = median_ms(lambda: enhancer_np(x.numpy()), 20)
    lines += ["", "| enhancer (shipped config) | params | MACs / frame | forward, numpy (ms) | forward, torch (ms) |",
              "|---|---|---|---|---|",
              f"| width {cfg.width}, {len(cfg.dilations)} residual blocks | "
              f"{sum(p.numel() for p in enhancer.parameters()) / 1e6:.2f} M | {count_macs(enhancer, x) / 1e6:.0f} M | "
              f"{numpy_ms:.1f} | {torch_ms:.1f} |"]
    lines += ["", "| receiver decoder (width 256) | params | MACs / frame | forward, numpy (ms) | decoder alone, RTF |",
              "|---|---|---|---|---|"]
    shipped = SpeechNetConfig()
    for rc in RECEIVERS:
        G = Generator1d(shipped, rc.dilations)
        z = torch.randn(1, shipped.latent_channels, BLOCK_FRAMES // shipped.time_stride + rc.context)
        net = runtime.generator(weights(G), rc.dilations, prefix="net.")
        ms = median_ms(lambda: net(z.numpy()), 20)
        lines.append(f"| dilations {', '.join(map(str, rc.dilations))}, context {rc.context} | "
                     f"{sum(p.numel() for p in G.parameters()) / 1e6:.2f} M | {count_macs(G, z) / 1e6:.0f} M | "
                     f"{ms:.1f} | {ms / 1024:.4f} |")
    text = (f"numpy {np.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads; medians of 50 "
            "(enhancer: 20) runs\n\n" + "\n".join(lines) + "\n")
    write_result("speech_nets.md", text)


if __name__ == "__main__":
    main()
