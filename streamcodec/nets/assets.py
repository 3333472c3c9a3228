"""The model asset format, written by training and read by the codecs: one model.safetensors
(encoder.*, generator.* weights, `levels`, `huffman_lengths`) and a config.json beside it.
Weights are stored as float16 (half the size in git and wheels; the networks run in float32 and
the difference in their output is far below what the quantised latent already loses).
Loading never unpickles anything: safetensors and JSON only. Reading needs numpy only (the speech
codec runs without torch); writing, and loading into torch modules, import torch when called."""

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import safetensors
from safetensors.numpy import load

from streamcodec.errors import StreamcodecError


def save_model(folder: Path, encoder, generator, levels, huffman_lengths, config: dict) -> Path:
    """Write E and G (torch modules), the levels and the Huffman code lengths, and config.json."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"encoder.{k}": v.half() for k, v in encoder.state_dict().items()}
    tensors.update({f"generator.{k}": v.half() for k, v in generator.state_dict().items()})
    tensors["levels"] = torch.as_tensor(levels, dtype=torch.float32)
    tensors["huffman_lengths"] = torch.as_tensor(huffman_lengths, dtype=torch.uint8)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return folder


def save_part(folder: Path, part: str, module, config: dict) -> Path:
    """Write an optional network (a torch module) beside a model (what read_part reads): float16
    weights in `part`.safetensors and its config in `part`.json."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {k: v.detach().half().contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(folder / f"{part}.safetensors"))
    (folder / f"{part}.json").write_text(json.dumps(config, indent=1) + "\n")
    return folder


class ModelError(StreamcodecError):
    """A model could not be found or loaded."""


@dataclass
class Assets:
    """A shipped model as read from disk, before its networks are built."""

    name: str
    tensors: dict  # name -> numpy array, from model.safetensors
    config: dict  # config.json
    model_id: bytes  # first 4 bytes of the SHA-256 of model.safetensors

    def load_into(self, prefix: str, module):
        """Load the `prefix.*` weights (float16 on disk) into a torch `module`; returns it in eval mode."""
        import torch

        n = len(prefix) + 1
        module.load_state_dict({k[n:]: torch.from_numpy(v.astype(np.float32))
                                for k, v in self.tensors.items() if k.startswith(prefix + ".")})
        return module.eval()

    def quantiser(self) -> tuple[np.ndarray, np.ndarray]:
        """(levels float32, Huffman code lengths), checked to describe the same number of symbols."""
        try:
            levels = self.tensors["levels"].astype(np.float32)
            lengths = self.tensors["huffman_lengths"]
        except KeyError as exc:
            raise ModelError(f"model {self.name!r} lacks {exc}: it is damaged or not a streamcodec model") from exc
        if len(lengths) != len(levels):
            raise ModelError(f"model {self.name!r}: {len(levels)} levels but a Huffman code for {len(lengths)}")
        return levels, lengths


def model_dir(name: str) -> Path:
    """A folder path, or the name of a model shipped inside the package (streamcodec.models)."""
    path = Path(name)
    if path.is_dir():
        return path
    candidate = Path(str(resources.files("streamcodec.models").joinpath(name)))
    if not (candidate / "model.safetensors").exists():
        raise ModelError(f"no model named {name!r}: pass a folder holding model.safetensors and config.json")
    return candidate


@dataclass
class Part:
    """An optional network shipped beside a model, as read from disk."""

    tensors: dict  # name -> numpy array, from `part`.safetensors
    config: dict  # `part`.json
    data: bytes  # the safetensors file itself (a model id may hash it)

    def load_into(self, module):
        """Load the weights (float16 on disk) into a torch `module`; returns it in eval mode."""
        import torch

        module.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in self.tensors.items()})
        return module.eval()


def read_part(name: str, part: str) -> Part | None:
    """An optional network shipped beside a model (`part`.safetensors and `part`.json, e.g. the
    speech enhancer), None where the model has none."""
    folder = model_dir(name)
    if not (folder / f"{part}.safetensors").exists():
        return None
    try:
        data = (folder / f"{part}.safetensors").read_bytes()
        return Part(load(data), json.loads((folder / f"{part}.json").read_text()), data)
    except (OSError, json.JSONDecodeError, safetensors.SafetensorError) as exc:
        raise ModelError(f"cannot read the {part} of model {name!r} in {folder}: {exc}") from exc


def read_assets(name: str) -> Assets:
    folder = model_dir(name)
    try:
        weights = (folder / "model.safetensors").read_bytes()
        config = json.loads((folder / "config.json").read_text())
        tensors = load(weights)
    except (OSError, json.JSONDecodeError, safetensors.SafetensorError) as exc:
        raise ModelError(f"cannot read the model in {folder}: {exc}") from exc
    return Assets(name, tensors, config, hashlib.sha256(weights).digest()[:4])
