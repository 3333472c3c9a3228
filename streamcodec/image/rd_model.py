"""The rate-distortion photo model (nets/image_rd.py, trained by train/image_rd.py) as the codec
runs it: numpy only. model.safetensors holds the four transforms (float16), the gains and z's
density (float32) and the entropy coder's tables as code lengths (`table.<bucket>`); config.json
its widths, quality lambdas, scale-bucket edges and the tables' ranges and runs. `save_rd_model`
(training side, torch) writes both."""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from streamcodec.core.context_code import ContextCode, build_tables, scale_edges
from streamcodec.nets.assets import ModelError, model_dir, read_assets
from streamcodec.nets.image_runtime import RDNets

KIND = "image-rd"
SCALE_MIN = 0.11  # nets/image_rd.SCALE_MIN (that module imports torch)
_AUX = ("gain", "inv_gain", "z_gain", "z_inv_gain", "z_loc", "z_log_scale")


@dataclass
class RDImageModel:
    name: str
    nets: RDNets
    tables: dict  # the gains (qualities x channels) and z's density, float32
    code: ContextCode
    model_id: bytes
    lambdas: tuple[float, ...] = ()  # the rate weight each trained quality was trained at (MSE on 0..255)

    @property
    def qualities(self) -> tuple[float, float]:
        """The quality range the rate control may use: the trained one (gains extrapolated below
        quality 0 tried in a scratch run: 5x the bits of quality 0, not fewer)."""
        return 0.0, float(len(self.tables["gain"]) - 1)

    def gains(self, quality: float) -> tuple[np.ndarray, ...]:
        """(channels, 1, 1) gains of y and z and their inverses: neighbouring trained gains mixed
        geometrically as RDModel.gains does."""
        n = len(self.tables["gain"])
        lo = int(min(max(np.floor(quality), 0), n - 2))
        t = quality - lo

        def mix(table):
            a, b = np.abs(table[lo]) + 1e-4, np.abs(table[lo + 1]) + 1e-4
            return (a ** (1 - t) * b**t).astype(np.float32)[:, None, None]

        return tuple(mix(self.tables[k]) for k in ("gain", "inv_gain", "z_gain", "z_inv_gain"))

    def lam(self, quality: float) -> float:
        """The rate weight of a quality, interpolated log-linearly as training does."""
        return float(np.exp(np.interp(quality, np.arange(len(self.lambdas)), np.log(self.lambdas))))

    def z_coding(self) -> tuple[np.ndarray, np.ndarray]:
        """z's integer offsets and scale per channel: z is coded as z - offset with the table of the
        Gaussian of the Laplace density's standard deviation."""
        return np.round(self.tables["z_loc"]).astype(np.int64), np.exp(self.tables["z_log_scale"]) * np.sqrt(2)


@lru_cache(maxsize=16)
def is_rd_model(name: str) -> bool:
    """Whether a model name or folder holds a rate-distortion image model (its config's kind)."""
    try:
        return json.loads((model_dir(name) / "config.json").read_text()).get("kind") == KIND
    except (ModelError, OSError, ValueError):
        return False


@lru_cache(maxsize=4)
def load_rd_model(name: str) -> RDImageModel:
    assets = read_assets(name)
    try:
        cfg = assets.config
        if cfg.get("kind") != KIND or cfg.get("scale_min") != SCALE_MIN:
            raise ModelError(f"model {name!r} is not a rate-distortion image model of this release")
        t = assets.tensors
        nets = RDNets({k: v for k, v in t.items() if k.split(".")[0] in ("g_a", "g_s", "h_a", "h_s")})
        tables = {k: t[k].astype(np.float32) for k in _AUX}
        edges = np.asarray(cfg["edges"], np.float64)
        lengths = [t[f"table.{b}"] for b in range(len(edges) + 1)]
        code = ContextCode.from_lengths(edges, cfg["ranges"], lengths, cfg["runs"])
        if tables["gain"].shape != (len(cfg["net"]["lambdas"]), cfg["net"]["m"]):
            raise ValueError(f"gains of shape {tables['gain'].shape} do not fit the config")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"image model {name!r} is damaged or incompatible: {exc}") from exc
    return RDImageModel(name, nets, tables, code, assets.model_id, tuple(float(v) for v in cfg["net"]["lambdas"]))


def save_rd_model(folder: Path, state: dict, net: dict, step: int, code: ContextCode | None = None) -> Path:
    """Write a trained RDModel's state dict (torch tensors) as a codec model folder, with `code`'s
    tables (default: built from the Gaussians, `build_tables`)."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    code = code or build_tables(scale_edges())
    tensors = {k: (v.float() if k in _AUX else v.half()) for k, v in state.items()}
    tensors.update({f"table.{b}": torch.as_tensor(n, dtype=torch.uint8) for b, n in enumerate(code.lengths())})
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    config = {"kind": KIND, "net": net, "step": step, "scale_min": SCALE_MIN, "edges": code.edges.tolist(),
              "ranges": code.ranges, "runs": code.runs}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return folder
