"""The numpy runtime of the rate-distortion image networks gives what the torch definitions give:
every transform's output, and the synthesis' gradient with respect to its input (what the latent
search follows); and it runs without torch."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from streamcodec.nets.image_rd import SCALE_MIN, RDModel, RDNetConfig
from streamcodec.nets.image_runtime import RDNets


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    model = RDModel(RDNetConfig(n=12, m=10, z=6))
    with torch.no_grad():  # GDN parameters away from their initial identity, as after training
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.add_(0.2 * torch.rand_like(p))
    model.eval()
    return model, RDNets({k: v.numpy() for k, v in model.state_dict().items()})


def test_transforms_match_torch(nets):
    model, rt = nets
    x = torch.rand(1, 3, 128, 64)
    with torch.no_grad():
        y = model.g_a(x)  # Analysis takes the 0.5 off
        z = model.h_a(y)
        mean, scale = model.h_s(torch.round(z))
        rec = model.g_s(y)  # Synthesis adds the 0.5
    np.testing.assert_allclose(rt.analysis(x[0].numpy()), y[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rt.h_a(y[0].numpy()), z[0].numpy(), rtol=1e-4, atol=1e-5)
    m, s = rt.hyper(torch.round(z)[0].numpy(), SCALE_MIN)
    np.testing.assert_allclose(m, mean[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(s, scale[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rt.synthesis(y[0].numpy()), rec[0].numpy(), rtol=1e-4, atol=1e-5)


def test_synthesis_gradient_matches_autograd(nets):
    model, rt = nets
    y = torch.randn(1, 10, 4, 3, requires_grad=True)
    target = torch.rand(1, 3, 64, 48)
    loss = (model.g_s(y) - target).pow(2).sum()
    (grad,) = torch.autograd.grad(loss, y)
    out, back = rt.synthesis_vjp(y[0].detach().numpy())
    np.testing.assert_allclose(out, model.g_s(y)[0].detach().numpy(), rtol=1e-4, atol=1e-5)
    mine = back(2 * (out - target[0].numpy()))
    np.testing.assert_allclose(mine, grad[0].numpy(), rtol=1e-3, atol=1e-4)


def test_runtime_imports_no_torch():
    code = "import sys, streamcodec.nets.image_runtime; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
