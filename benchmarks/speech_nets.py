"""Cost of the speech networks: parameters, multiply-accumulates per 1.024 s frame, and the time
of one latent-search step (G forward plus backward with respect to z, batch 1) with 2 threads;
and the same for the enhancer as shipped (one forward pass).

    .venv/bin/python benchmarks/speech_nets.py     # writes benchmarks/results/speech_nets.md
"""

import time

import torch

from benchmarks import write_result
from streamcodec.dsp.params import BLOCK_FRAMES, N_MELS
from streamcodec.nets.speech import Enhancer, EnhancerConfig, SpeechNetConfig, build, count_macs, latent_shape

CANDIDATES = [
    SpeechNetConfig("conv1d", 16, 128, 1),
    SpeechNetConfig("conv1d", 16, 192, 1),
    SpeechNetConfig("conv1d", 16, 256, 2),
    SpeechNetConfig("conv2d", 32),
]


def search_step_ms(G, z, x, repeats=50) -> float:
    G.requires_grad_(False)
    z = z.clone().requires_grad_(True)

    def step():
        loss = (G(z) - x).pow(2).mean()
        return torch.autograd.grad(loss, z)[0]

    for _ in range(5):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    return 1000 * times[len(times) // 2]


def main() -> None:
    torch.set_num_threads(2)
    x = torch.rand(1, N_MELS, BLOCK_FRAMES) * 2 - 1
    lines = ["| G | latent | G params | G MACs / frame | E MACs / frame | search step (ms, median) |",
             "|---|---|---|---|---|---|"]
    for cfg in CANDIDATES:
        E, G = build(cfg)
        z = torch.randn(1, *latent_shape(cfg, BLOCK_FRAMES))
        params = sum(p.numel() for p in G.parameters())
        lines.append(
            f"| {cfg.arch}{f' w{cfg.width} b{cfg.blocks_per_stage}' if cfg.arch == 'conv1d' else ''} | "
            f"{tuple(z.shape[1:])} | {params / 1e6:.2f} M | "
            f"{count_macs(G, z) / 1e6:.0f} M | {count_macs(E, x) / 1e6:.0f} M | {search_step_ms(G, z, x):.1f} |"
        )
    enhancer = Enhancer(EnhancerConfig()).eval()
    with torch.no_grad():
        enhancer(x)
        start = time.perf_counter()
        for _ in range(20):
            enhancer(x)
    lines += ["", "| enhancer (shipped config) | params | MACs / frame | forward (ms, mean of 20) |", "|---|---|---|---|",
              f"| width {enhancer.net[0].out_channels}, {len(EnhancerConfig().dilations)} residual blocks | "
              f"{sum(p.numel() for p in enhancer.parameters()) / 1e6:.2f} M | {count_macs(enhancer, x) / 1e6:.0f} M | "
              f"{(time.perf_counter() - start) / 20 * 1000:.1f} |"]
    text = f"torch {torch.__version__}, {torch.get_num_threads()} threads\n\n" + "\n".join(lines) + "\n"
    write_result("speech_nets.md", text)


if __name__ == "__main__":
    main()
