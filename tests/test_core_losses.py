"""The image loss: MS-SSIM agrees with an independent implementation and behaves as a distance."""

import pytest
import torch
from pytorch_msssim import ms_ssim as reference

from streamcodec.core.losses import ms_ssim, msssim_mse


def test_ms_ssim_matches_pytorch_msssim():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 192, 256, generator=g)
    for y in (x + 0.05 * torch.randn(x.shape, generator=g), torch.nn.functional.avg_pool2d(x, 3, 1, 1)):
        y = y.clamp(0, 1)
        assert torch.allclose(ms_ssim(x, y), reference(x, y, data_range=1.0, size_average=False), atol=1e-4)


def test_ms_ssim_small_images_and_gradients():
    x = torch.rand(2, 3, 24, 40)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2))  # one scale fits: still a valid score
    y = (x + 0.1).clamp(0, 1).requires_grad_(True)
    loss = msssim_mse(30.0)(x, y)
    assert loss.shape == (2,) and (loss > 0).all()
    loss.sum().backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 11"):
        ms_ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
