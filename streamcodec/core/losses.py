"""Image distortion measures, per item, differentiable: MS-SSIM (Wang, Simoncelli, Bovik 2003) and
the codec's search and training loss, (1 - MS-SSIM) + alpha * MSE.

MS-SSIM uses the usual constants (11-tap Gaussian window, sigma 1.5, five scales with weights
0.0448 ... 0.1333, 2x2 average pooling between scales). An image too small for five scales uses
as many as fit, with their weights renormalised, so small crops still get a meaningful score.
"""

import torch
import torch.nn.functional as F

_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN = 11
_C1, _C2 = 0.01**2, 0.03**2


def _window(device, dtype) -> torch.Tensor:
    t = torch.arange(_WIN, dtype=dtype, device=device) - _WIN // 2
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Valid 11x11 Gaussian filtering of every channel, as two depthwise 1-D passes (a grouped
    convolution is an order of magnitude faster on CPU than one channel at a time)."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, _WIN, 1).expand(c, 1, _WIN, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, _WIN).expand(c, 1, 1, _WIN), groups=c)


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu_x, mu_y, xx, yy, xy = _blur(torch.cat([x, y, x * x, y * y, x * y], 1), g).chunk(5, 1)
    sxx, syy, sxy = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    cs = (2 * sxy + _C2) / (sxx + syy + _C2)
    lum = (2 * mu_x * mu_y + _C1) / (mu_x**2 + mu_y**2 + _C1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per item of two (batch, channels, H, W) images in [0, 1]; needs H, W >= 11."""
    if min(x.shape[-2:]) < _WIN:
        raise ValueError(f"MS-SSIM needs images of at least {_WIN}x{_WIN} pixels")
    scales = 1
    while scales < len(_WEIGHTS) and min(x.shape[-2:]) >> scales >= _WIN:
        scales += 1
    weights = torch.tensor(_WEIGHTS[:scales], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    win = _window(x.device, x.dtype)
    out = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(scales):
        ssim, cs = _ssim_terms(x, y, win)
        term = ssim if s == scales - 1 else cs
        out = out * term.clamp_min(1e-6) ** weights[s]
        if s < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out


def msssim_mse(alpha: float):
    """The image loss (1 - MS-SSIM) + alpha * MSE, per item, as a (target, output) function."""

    def loss(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        mse = (target - output).pow(2).flatten(1).mean(1)
        return (1 - ms_ssim(target, output)) + alpha * mse

    return loss
