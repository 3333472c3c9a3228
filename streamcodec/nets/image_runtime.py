"""The rate-distortion image networks (nets/image_rd.py) in numpy, without torch: what the image
codec runs (the four transforms forward, and the synthesis' vector-Jacobian product for the
latent search). Arrays are (channels, height, width) float32: one image at a time, as the codec
works tile by tile.

A convolution is one im2col matrix product per block of output rows (the whole im2col matrix of a
3x3 convolution at half the resolution of a 768x512 photo would take 340 MB); its gradient with
respect to the input is the transposed convolution (taps reversed, in and out swapped), the same
product. tests/test_nets_image_runtime.py checks outputs and gradients
against the torch definitions.
"""

import functools

import numpy as np

from streamcodec.nets.runtime import Pullback, Sequential


BLOCK_FLOATS = 1 << 22  # im2col rows are built a block of output rows at a time: 16 MB at most


class Conv2d:
    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: int = 1, dtype=np.float32) -> None:
        w = np.asarray(weight, dtype)
        self.weight = w
        self.out_ch, self.in_ch, self.k, _ = w.shape
        self.w = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(self.out_ch, -1))  # (out, (dy, dx, in))
        self.bias = None if bias is None else np.asarray(bias, dtype)[:, None]
        self.dtype = dtype
        self.stride = stride
        self.pad = self.k // 2

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c, h, w = x.shape
        k, p, s = self.k, self.pad, self.stride
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        xp = np.pad(x, ((0, 0), (p, p), (p, p)))
        out = np.empty((self.out_ch, ho, wo), self.dtype)
        rows = max(1, BLOCK_FLOATS // (k * k * c * wo))
        for r0 in range(0, ho, rows):
            r1 = min(ho, r0 + rows)
            cols = np.empty((k, k, c, r1 - r0, wo), self.dtype)
            for dy in range(k):
                for dx in range(k):
                    cols[dy, dx] = xp[:, dy + s * r0 : dy + s * (r1 - 1) + 1 : s, dx : dx + s * (wo - 1) + 1 : s]
            res = self.w @ cols.reshape(k * k * c, -1)
            if self.bias is not None:
                res += self.bias
            out[:, r0:r1] = res.reshape(self.out_ch, r1 - r0, wo)
        return out

    @functools.cached_property
    def transposed(self) -> "Conv2d":
        """The convolution that maps d loss / d output to d loss / d input (stride 1): taps
        reversed, in and out swapped."""
        return Conv2d(self.weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), None)

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        if self.stride != 1:
            raise NotImplementedError("only the synthesis (stride 1) is differentiated")
        return self(x), self.transposed


class GDN:
    """y = x / sqrt(beta + gamma x^2), or times it (inverse), over channels at each pixel."""

    def __init__(self, beta: np.ndarray, gamma: np.ndarray, inverse: bool) -> None:
        self.beta = (np.asarray(beta, np.float32) ** 2 + 1e-6)[:, None]
        self.gamma = np.asarray(gamma, np.float32)[:, :, 0, 0] ** 2
        self.inverse = inverse

    def _norm(self, x2: np.ndarray) -> np.ndarray:
        return self.gamma @ x2 + self.beta

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(x.shape[0], -1)
        root = np.sqrt(self._norm(flat * flat))
        return (flat * root if self.inverse else flat / root).reshape(x.shape)

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        if not self.inverse:
            raise NotImplementedError("only the synthesis' inverse GDN is differentiated")
        flat = x.reshape(x.shape[0], -1)
        root = np.sqrt(self._norm(flat * flat))

        def back(g: np.ndarray) -> np.ndarray:
            g = g.reshape(flat.shape)
            # d/dx_i of x_j sqrt(n_j) = delta_ij sqrt(n_j) + x_j gamma_ji x_i / sqrt(n_j)
            return (g * root + flat * (self.gamma.T @ (g * flat / root))).reshape(x.shape)

        return (flat * root).reshape(x.shape), back


class PixelShuffle:
    """(4c, h, w) -> (c, 2h, 2w), as torch.nn.PixelShuffle(2)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c4, h, w = x.shape
        c = c4 // 4
        return x.reshape(c, 2, 2, h, w).transpose(0, 3, 1, 4, 2).reshape(c, 2 * h, 2 * w)

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        c4, h, w = x.shape

        def back(g: np.ndarray) -> np.ndarray:
            return g.reshape(c4 // 4, h, 2, w, 2).transpose(0, 2, 4, 1, 3).reshape(c4, h, w)

        return self(x), back


class LeakyReLU:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.2 * x)


def _layers(tensors: dict, prefix: str, kinds: list[str], dtype=np.float32) -> Sequential:
    """The layers of one nn.Sequential named `prefix`, index by index: "down" (5x5 stride 2),
    "conv" (stride 1), "up" (3x3 convolution and pixel shuffle, one index), "gdn", "igdn", "lrelu"."""
    layers: list = []
    for i, kind in enumerate(kinds):
        at = f"{prefix}{i}."
        if kind in ("down", "conv"):
            layers.append(Conv2d(tensors[at + "weight"], tensors[at + "bias"], 2 if kind == "down" else 1, dtype))
        elif kind == "up":
            layers += [Conv2d(tensors[at + "0.weight"], tensors[at + "0.bias"], 1, dtype), PixelShuffle()]
        elif kind in ("gdn", "igdn"):
            layers.append(GDN(tensors[at + "beta"], tensors[at + "gamma"], inverse=kind == "igdn"))
        else:
            layers.append(LeakyReLU())
    return Sequential(layers)


class RDNets:
    """The four transforms of a trained RDModel, from its state dict (numpy arrays). h_s runs in
    float64: its scales choose the entropy coder's tables, so encoder and decoder must agree on
    them to the bucket, and float64 leaves rounding differences between machines far from an edge."""

    def __init__(self, tensors: dict) -> None:
        t = {k: np.asarray(v, np.float32) for k, v in tensors.items()}
        t64 = {k: np.asarray(v, np.float64) for k, v in tensors.items() if k.startswith("h_s.")}
        self.g_a = _layers(t, "g_a.net.", ["down", "gdn", "down", "gdn", "down", "gdn", "down"])
        self.g_s = _layers(t, "g_s.net.", ["up", "igdn", "up", "igdn", "up", "igdn", "up"])
        self.h_a = _layers(t, "h_a.net.", ["conv", "lrelu", "down", "lrelu", "down"])
        self.h_s = _layers(t64, "h_s.net.", ["up", "lrelu", "up", "lrelu", "conv"], np.float64)

    def analysis(self, x: np.ndarray) -> np.ndarray:
        return self.g_a(x - 0.5)

    def synthesis(self, y: np.ndarray) -> np.ndarray:
        return self.g_s(y) + 0.5

    def synthesis_vjp(self, y: np.ndarray) -> tuple[np.ndarray, Pullback]:
        out, back = self.g_s.vjp(y)
        return out + 0.5, back

    def hyper(self, z_hat: np.ndarray, scale_min: float) -> tuple[np.ndarray, np.ndarray]:
        """(mean, scale) of every value of y from the dequantised hyper-latent, float64."""
        mean, raw = np.split(self.h_s(np.asarray(z_hat, np.float64)), 2, axis=0)
        return mean, np.logaddexp(0.0, raw) + scale_min
