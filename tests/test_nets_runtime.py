"""The numpy speech networks (nets/runtime.py) against their torch definitions (nets/speech.py):
same weights, same output, same gradient; weights that do not fit are refused."""

import numpy as np
import pytest
import torch

from streamcodec.nets import runtime
from streamcodec.nets.speech import Enhancer, EnhancerConfig, SpeechNetConfig, build


def _weights(module: torch.nn.Module, prefix: str = "") -> dict:
    return {prefix + k: v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("blocks", [1, 2])
def test_encoder_and_generator_match_torch(blocks):
    torch.manual_seed(blocks)
    cfg = SpeechNetConfig("conv1d", 8, 32, blocks)
    E, G = build(cfg)
    tensors = {**_weights(E, "encoder."), **_weights(G, "generator.")}
    E_np, G_np = runtime.encoder(tensors), runtime.generator(tensors, cfg.dilations)
    x = torch.tanh(torch.randn(3, 128, 40))
    with torch.no_grad():
        z = E(x)
        y = G(z)
    np.testing.assert_allclose(E_np(x.numpy()), z.numpy(), atol=1e-5)
    np.testing.assert_allclose(G_np(z.numpy()), y.numpy(), atol=1e-5)


def test_generator_vjp_is_torch_autograd():
    torch.manual_seed(0)
    _, G = build(SpeechNetConfig("conv1d", 8, 32, 2))
    G_np = runtime.generator(_weights(G, "generator."), (1, 2))
    z = torch.randn(2, 8, 10, requires_grad=True)
    g = torch.randn(2, 128, 40)
    y = G(z)
    y.backward(g)
    y_np, back = G_np.vjp(z.detach().numpy())
    np.testing.assert_allclose(y_np, y.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(back(g.numpy()), z.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_enhancer_matches_torch():
    torch.manual_seed(1)
    cfg = EnhancerConfig(32, (1, 2, 4))
    net = Enhancer(cfg)
    torch.nn.init.normal_(net.net[-1].weight, std=0.05)  # not the identity it starts as
    x = torch.tanh(torch.randn(2, 128, 50))
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(runtime.enhancer(_weights(net), cfg.dilations)(x.numpy()), expected, atol=1e-5)


def test_strided_padded_convolution_matches_torch():
    torch.manual_seed(2)
    for k, stride, padding, dilation in [(4, 2, 1, 1), (3, 1, 4, 4), (5, 3, 2, 1)]:
        conv = torch.nn.Conv1d(6, 5, k, stride=stride, padding=padding, dilation=dilation)
        x = torch.randn(3, 6, 17)
        with torch.no_grad():
            expected = conv(x).numpy()
        ours = runtime.Conv1d(conv.weight.detach().numpy(), conv.bias.detach().numpy(), padding, dilation, stride)
        out = ours(np.ascontiguousarray(x.numpy().transpose(1, 0, 2))).transpose(1, 0, 2)
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_weights_that_do_not_fit_are_refused():
    _, G = build(SpeechNetConfig("conv1d", 8, 32, 2))
    tensors = _weights(G, "generator.")
    with pytest.raises(KeyError):
        runtime.generator(tensors, (1,))  # the config says one block per stage, the file has two
    with pytest.raises(KeyError, match="does not have"):
        runtime.generator({**tensors, "generator.net.13.weight": np.zeros(1)}, (1, 2))
    del tensors["generator.net.0.bias"]
    with pytest.raises(KeyError, match="missing"):
        runtime.generator(tensors, (1, 2))
