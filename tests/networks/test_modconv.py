"""The two modulated-convolution paths compute the same function, and match a literal definition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from latent_transforms.networks.modconv import DEFAULT_PATH, modulated_conv2d, resolve_path


def _literal(x, weight, styles, demodulate, up):
    """Per-sample reference: build each sample's kernel and convolve it on its own."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b].view(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        xb = x[b : b + 1]
        if up:
            # zero insertion, then a 'full' correlation with the flipped kernel == transposed conv
            y = F.conv_transpose2d(xb, w.transpose(0, 1), stride=2)
            f = torch.tensor([1.0, 3.0, 3.0, 1.0])
            f2 = torch.outer(f, f) / 64 * 4
            c = y.shape[1]
            y = F.conv2d(F.pad(y, (1, 1, 1, 1)), f2.expand(c, 1, 4, 4), groups=c)
        else:
            y = F.conv2d(xb, w, padding=weight.shape[-1] // 2)
        outs.append(y)
    return torch.cat(outs)


@pytest.mark.parametrize(("kernel", "up"), [(1, False), (3, False), (3, True)])  # 1x1 never up-samples
@pytest.mark.parametrize("demodulate", [True, False])
def test_grouped_and_nonfused_paths_agree_to_1e5(kernel, up, demodulate, seeded):
    x = torch.randn(4, 6, 8, 8, generator=seeded)
    weight = torch.randn(5, 6, kernel, kernel, generator=seeded)
    styles = torch.randn(4, 6, generator=seeded)
    grouped = modulated_conv2d(x, weight, styles, demodulate=demodulate, up=up, path="grouped")
    nonfused = modulated_conv2d(x, weight, styles, demodulate=demodulate, up=up, path="nonfused")
    literal = _literal(x, weight, styles, demodulate, up)
    assert grouped.shape == literal.shape == (4, 5, 16 if up else 8, 16 if up else 8)
    assert (grouped - nonfused).abs().max() < 1e-5
    assert (grouped - literal).abs().max() < 1e-5


def test_demodulation_gives_unit_output_scale_for_unit_input(seeded):
    x = torch.randn(64, 16, 8, 8, generator=seeded)
    weight = torch.randn(16, 16, 3, 3, generator=seeded)
    styles = torch.rand(64, 16, generator=seeded) * 5 + 0.1
    y = modulated_conv2d(x, weight, styles, path="nonfused")
    # each output channel's kernel has unit norm, so i.i.d. unit inputs give ~unit variance inside
    assert 0.8 < y[:, :, 1:-1, 1:-1].var().item() < 1.2


def test_auto_resolves_per_device_and_rejects_unknown_paths():
    assert resolve_path("auto", torch.device("cpu")) == DEFAULT_PATH["cpu"]
    assert resolve_path("grouped", torch.device("cpu")) == "grouped"
    with pytest.raises(ValueError, match="modulation path"):
        resolve_path("fast", torch.device("cpu"))
