"""CUDA correctness of the networks (run with ``pytest -m cuda`` on a GPU machine; skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

from latent_transforms import GanBundle
from tests.conftest import tiny_config

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _exact_float32():
    """cuDNN convolutions default to TF32 on Ampere and later (about 1e-3 relative): compare in fp32."""
    if not torch.cuda.is_available():
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _bundle() -> GanBundle:
    bundle = GanBundle.random(tiny_config(32, c_dim=3), seed=0)
    with torch.no_grad():
        for layer in bundle.generator.synthesis.noise_layers():
            layer.noise_strength.fill_(0.2)
    return bundle


def test_cuda_outputs_match_cpu_for_both_modulation_paths():
    bundle = _bundle()
    z = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    c = torch.eye(3)[torch.arange(8) % 3]
    with torch.no_grad():
        ref_img = bundle.generator(z, c)
        ref_logits = bundle.discriminator(ref_img, c)
        gpu = bundle.to("cuda")
        for path in ("grouped", "nonfused"):
            gpu.generator.modulation = path
            img = gpu.generator(z.cuda(), c.cuda())
            assert (img.cpu() - ref_img).abs().max() < 1e-4
        assert (gpu.discriminator(ref_img.cuda(), c.cuda()).cpu() - ref_logits).abs().max() < 1e-4


def test_cuda_bf16_autocast_and_channels_last():
    bundle = _bundle().to("cuda")
    G = bundle.generator
    z = torch.randn(8, 32, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    c = torch.eye(3, device="cuda")[torch.arange(8, device="cuda") % 3]
    with torch.no_grad():
        ref = G(z, c)
        G.channels_last = True
        assert (G(z, c) - ref).abs().max() < 1e-4
        for path in ("grouped", "nonfused"):
            G.modulation = path
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = G(z, c)
            assert out.dtype == torch.float32 and torch.isfinite(out).all()
            assert (out - ref).norm() / ref.norm() < 0.05


def test_random_noise_is_seeded_on_cuda():
    G = _bundle().to("cuda").generator
    ws = G.mapping(torch.randn(2, 32, device="cuda"), torch.eye(3, device="cuda")[:2])
    a = G.synthesis(ws, noise_mode="random", generator=torch.Generator("cuda").manual_seed(1))
    b = G.synthesis(ws, noise_mode="random", generator=torch.Generator("cuda").manual_seed(1))
    c = G.synthesis(ws, noise_mode="random", generator=torch.Generator("cuda").manual_seed(2))
    # same seed, same noise maps; cuDNN may pick kernels whose sums differ in the last bits
    first = G.synthesis.make_noise(2, generator=torch.Generator("cuda").manual_seed(1), device="cuda")
    again = G.synthesis.make_noise(2, generator=torch.Generator("cuda").manual_seed(1), device="cuda")
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, c, atol=1e-3)
