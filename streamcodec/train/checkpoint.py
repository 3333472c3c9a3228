"""Resumable checkpoints without pickle: module and optimizer tensors in one safetensors file,
everything else (step counts, optimizer hyper-parameters) as JSON in its metadata."""

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open


def save(path: Path, modules: dict, optimizers: dict, info: dict) -> None:
    tensors, meta = {}, {"info": info, "optimizers": {}}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}/{key}"] = value.detach().contiguous()
    for name, opt in optimizers.items():
        state = opt.state_dict()
        meta["optimizers"][name] = {"param_groups": state["param_groups"], "state_keys": {}}
        for idx, entry in state["state"].items():
            meta["optimizers"][name]["state_keys"][str(idx)] = list(entry)
            for key, value in entry.items():
                tensors[f"opt.{name}/{idx}/{key}"] = torch.as_tensor(value).contiguous()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"json": json.dumps(meta)})
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact


def load(path: Path, modules: dict, optimizers: dict) -> dict:
    """Restore modules and optimizers in place; return the saved info dict."""
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["json"])
    for name, module in modules.items():
        prefix = f"{name}/"
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in optimizers.items():
        saved = meta["optimizers"].get(name)
        if saved is None:
            continue
        state = {int(idx): {key: tensors[f"opt.{name}/{idx}/{key}"] for key in keys}
                 for idx, keys in saved["state_keys"].items()}
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    return meta["info"]
