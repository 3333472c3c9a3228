"""The speech networks run in numpy, without torch: what the speech codec runs (E, G and its
vector-Jacobian product for the search, the enhancer). Importing torch costs a one-shot encode or a
sender process seconds and a few hundred MiB; numpy's BLAS does the same convolutions as fast.
torch stays for training (nets/speech.py defines the networks there) and the image codec.

Arrays are (batch, channels, frames) float32 at the edges, as in nets/speech.py; inside, layers
work on (channels, batch, frames) so that every convolution is one matrix product over the whole
batch. The layers mirror nets/speech.py index for index and read the same safetensors keys;
tests/test_nets_runtime.py checks both give the same output and gradient.
"""

import functools
from typing import Callable

import numpy as np

from streamcodec.dsp.params import N_MELS
from streamcodec.nets.speech_config import LEAKY_SLOPE

Pullback = Callable[[np.ndarray], np.ndarray]


class Conv1d:
    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, padding: int = 1, dilation: int = 1, stride: int = 1):
        self.out_ch, self.in_ch, self.k = weight.shape
        # (out, in * k), and the bias as one more column that meets a row of ones in the im2col
        # matrix: the matrix product adds it, not another pass over the output
        w = np.asarray(weight, np.float32).reshape(self.out_ch, -1)
        self.ones = int(bias is not None)  # rows of ones the im2col matrix needs: 1 with a bias
        self.w = np.ascontiguousarray(np.concatenate([w, np.asarray(bias, np.float32)[:, None]], 1) if self.ones else w)
        self.padding, self.dilation, self.stride = padding, dilation, stride

    def _cols(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """im2col: (in * k [+ 1], batch * frames_out), row (c, j) the input channel c as tap j of
        every output frame reads it, the zero padding written in place (no padded copy of x); with
        a bias, a last row of ones."""
        p, d, s = self.padding, self.dilation, self.stride
        channels, batch, frames = x.shape
        t_out = (frames + 2 * p - d * (self.k - 1) - 1) // s + 1
        n = batch * t_out
        flat = np.empty((channels * self.k + self.ones) * n, np.float32)
        cols = flat[: channels * self.k * n].reshape(channels, self.k, batch, t_out)
        flat[channels * self.k * n :] = 1
        for j in range(self.k):
            # output t reads input s * t + j * d - p; those outside the input read the padding
            first = max(0, -(-(p - j * d) // s))
            last = min(t_out, (frames - 1 - j * d + p) // s + 1)
            cols[:, j, :, :first] = 0
            cols[:, j, :, last:] = 0
            start = s * first + j * d - p
            cols[:, j, :, first:last] = x[:, :, start : start + s * (last - first - 1) + 1 : s]
        return flat.reshape(-1, n), t_out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        cols, t_out = self._cols(x)
        return (self.w @ cols).reshape(self.out_ch, x.shape[1], t_out)

    @functools.cached_property
    def transposed(self) -> "Conv1d":
        """The convolution that maps d loss / d output to d loss / d input (stride 1): the taps
        reversed in time, in and out swapped, padding (k - 1) * dilation - padding. One im2col and
        one matrix product, like the forward pass; built on the first vjp (receivers never ask)."""
        weight = self.w[:, : self.in_ch * self.k].reshape(self.out_ch, self.in_ch, self.k)
        return Conv1d(weight[:, :, ::-1].transpose(1, 0, 2), None,
                      (self.k - 1) * self.dilation - self.padding, self.dilation)

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        assert self.stride == 1, "only stride-1 convolutions are differentiated (G has no other)"
        return self(x), self.transposed


class LeakyReLU:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, LEAKY_SLOPE * x)

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        # 1 or LEAKY_SLOPE per value, by arithmetic: np.where on a data-dependent mask is many times slower
        slope = (x > 0).astype(np.float32)
        slope *= np.float32(1 - LEAKY_SLOPE)
        slope += np.float32(LEAKY_SLOPE)
        return x * slope, lambda g: g * slope


class Upsample2:
    """Nearest-neighbour 2x in time."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = np.empty((*x.shape[:2], 2 * x.shape[2]), np.float32)
        y[..., 0::2] = x
        y[..., 1::2] = x
        return y

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        # two strided halves: numpy's sum over an axis of length 2 is many times slower
        return self(x), lambda g: g[..., 0::2] + g[..., 1::2]


class Tanh:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        y = np.tanh(x)
        return y, lambda g: g * (1 - y * y)


class Sequential:
    def __init__(self, layers: list) -> None:
        self.layers = layers

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
        return x

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        backs = []
        for layer in self.layers:
            x, back = layer.vjp(x)
            backs.append(back)

        def back_all(g: np.ndarray) -> np.ndarray:
            for back in reversed(backs):
                g = back(g)
            return g

        return x, back_all


class Residual(Sequential):
    """x + body(x), the body being LeakyReLU, conv (dilated), LeakyReLU, conv (nets/speech._Res1d)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x + super().__call__(x)

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        y, back = super().vjp(x)
        return x + y, lambda g: g + back(g)


class Net:
    """A network on (batch, channels, frames) arrays: `net(x)` and, for the search, `net.vjp(x)`
    -> (output, pullback from d loss / d output to d loss / d input). Stateless between calls, so
    several threads may run one Net at once."""

    def __init__(self, body: Sequential, residual_clip: bool = False) -> None:
        self.body, self.residual_clip = body, residual_clip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        xt = np.ascontiguousarray(np.asarray(x, np.float32).transpose(1, 0, 2))
        y = self.body(xt)
        if self.residual_clip:
            y = np.clip(xt + y, -1.0, 1.0)
        return np.ascontiguousarray(y.transpose(1, 0, 2))

    def vjp(self, x: np.ndarray) -> tuple[np.ndarray, Pullback]:
        assert not self.residual_clip, "the enhancer runs forward only"
        y, back = self.body.vjp(np.ascontiguousarray(np.asarray(x, np.float32).transpose(1, 0, 2)))
        return (np.ascontiguousarray(y.transpose(1, 0, 2)),
                lambda g: np.ascontiguousarray(back(np.ascontiguousarray(g.transpose(1, 0, 2), np.float32))
                                               .transpose(1, 0, 2)))


class _Weights:
    """The tensors of one network (`prefix`.net.N.*), taken once each, so that a file with weights
    this code does not use is caught rather than silently half-loaded."""

    def __init__(self, tensors: dict, prefix: str) -> None:
        self.tensors, self.prefix = tensors, prefix
        self.left = {k for k in tensors if k.startswith(prefix)}

    def take(self, name: str) -> np.ndarray:
        key = self.prefix + name
        if key not in self.tensors:
            raise KeyError(f"missing weight {key}")
        self.left.discard(key)
        return np.asarray(self.tensors[key], np.float32)

    def conv(self, index: str, **kw) -> Conv1d:
        return Conv1d(self.take(f"{index}.weight"), self.take(f"{index}.bias"), **kw)

    def residual(self, index: int, dilation: int = 1) -> Residual:
        return Residual([LeakyReLU(), self.conv(f"{index}.body.1", padding=dilation, dilation=dilation),
                         LeakyReLU(), self.conv(f"{index}.body.3")])

    def done(self, layers: list) -> Sequential:
        if self.left:
            raise KeyError(f"weights this network does not have: {sorted(self.left)[:3]}")
        return Sequential(layers)


def generator(tensors: dict, dilations: tuple[int, ...], prefix: str = "generator.net.") -> Net:
    """nets/speech.Generator1d: latent (batch, channels, steps) -> log-mel (batch, 128, 4 * steps);
    `dilations`: those of each stage's residual blocks (G's: SpeechNetConfig.dilations)."""
    w = _Weights(tensors, prefix)
    layers: list = [w.conv("0")]
    i = 1
    for d in dilations:
        layers.append(w.residual(i, d))
        i += 1
    for _ in range(2):
        layers += [Upsample2(), w.conv(str(i + 1))]
        i += 2
        for d in dilations:
            layers.append(w.residual(i, d))
            i += 1
    layers += [LeakyReLU(), w.conv(str(i + 1)), Tanh()]
    return Net(w.done(layers))


def encoder(tensors: dict, prefix: str = "encoder.net.") -> Net:
    """nets/speech.Encoder1d: log-mel (batch, 128, frames) -> latent (batch, channels, frames / 4)."""
    w = _Weights(tensors, prefix)
    layers: list = [w.conv("0"), w.residual(1)]
    i = 2
    for _ in range(2):
        layers += [LeakyReLU(), w.conv(str(i + 1), stride=2), w.residual(i + 2)]
        i += 3
    layers += [LeakyReLU(), w.conv(str(i + 1))]
    return Net(w.done(layers))


def enhancer(tensors: dict, dilations: tuple[int, ...], prefix: str = "net.") -> Net:
    """nets/speech.Enhancer: clip(x + net(x), -1, 1) on level-normalised log-mel."""
    w = _Weights(tensors, prefix)
    layers: list = [w.conv("0")]
    layers += [w.residual(i + 1, d) for i, d in enumerate(dilations)]
    layers += [LeakyReLU(), w.conv(str(len(dilations) + 2))]
    if layers[-1].out_ch != N_MELS:
        raise KeyError(f"the enhancer gives {layers[-1].out_ch} bands, not {N_MELS}")
    return Net(w.done(layers), residual_clip=True)
