"""Size and cost of the shipped image networks: parameters, multiply-accumulates for a 768x512
photo, and one search step (G forward and backward to the latent, all 32 channels, median of 5).

    .venv/bin/python -m benchmarks.image_nets     # writes benchmarks/results/image_nets.md
"""

import time

import torch

import streamcodec.image as sci
from benchmarks import write_result
from streamcodec.nets.speech import count_macs


def main() -> None:
    model = sci.load_model()
    x = torch.rand(1, 3, 512, 768)
    with torch.no_grad():
        z = model.encoder(x)
    z.requires_grad_(True)
    times = []
    for _ in range(6):
        start = time.perf_counter()
        model.generator(z).square().mean().backward()
        times.append(time.perf_counter() - start)
    step = sorted(times[1:])[2]

    def params(m):
        return sum(p.numel() for p in m.parameters()) / 1e6

    lines = [f"# Image networks, model {model.model_id.hex()}, 768x512, {torch.get_num_threads()} threads", "",
             "| network | parameters | multiply-accumulates |", "|---|---|---|",
             f"| E | {params(model.encoder):.2f} M | {count_macs(model.encoder, x) / 1e9:.2f} G |",
             f"| G | {params(model.generator):.2f} M | {count_macs(model.generator, z.detach()) / 1e9:.2f} G |", "",
             f"One search step (G forward + backward to the latent): {1000 * step:.0f} ms"]
    write_result("image_nets.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
