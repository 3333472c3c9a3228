"""The model asset format, written by training and read by the codecs: one model.safetensors
(encoder.*, generator.* weights, `levels`, `huffman_lengths`) and a config.json beside it.
Weights are stored as float16 (half the size in git and wheels; the networks run in float32 and
the difference in their output is far below what the quantised latent already loses)."""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def save_model(folder: Path, encoder: torch.nn.Module, generator: torch.nn.Module, levels: torch.Tensor,
               huffman_lengths, config: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"encoder.{k}": v.half() for k, v in encoder.state_dict().items()}
    tensors.update({f"generator.{k}": v.half() for k, v in generator.state_dict().items()})
    tensors["levels"] = torch.as_tensor(levels, dtype=torch.float32)
    tensors["huffman_lengths"] = torch.as_tensor(huffman_lengths, dtype=torch.uint8)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return folder
