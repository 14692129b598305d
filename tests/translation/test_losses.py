"""The losses of CycleGAN (least squares, cycle consistency) and DUIIT (prediction loss, joint objective),
and the networks they train: the ResNet-block generator and the 70x70 PatchGAN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from latent_transforms.errors import ConfigError
from latent_transforms.translation import (
    CYCLE_WEIGHT,
    PREDICTION_WEIGHT,
    PatchDiscriminator,
    ResnetGenerator,
    cycle_loss,
    discriminator_loss,
    generator_loss,
    joint_objective,
    lsgan_loss,
    patch_receptive_field,
    prediction_loss,
    task_loss,
)


def test_the_papers_weights():
    assert CYCLE_WEIGHT == 10.0 and PREDICTION_WEIGHT == 0.001


def test_least_squares_losses_push_real_scores_to_one_and_fake_scores_to_zero():
    scores = torch.tensor([[0.2, 0.9], [1.5, -0.3]])
    assert torch.isclose(lsgan_loss(scores, True), ((scores - 1) ** 2).mean())
    assert torch.isclose(lsgan_loss(scores, False), (scores**2).mean())
    real, fake = torch.tensor([0.8, 1.1]), torch.tensor([0.3, -0.1])
    expected = 0.5 * (F.mse_loss(real, torch.ones(2)) + F.mse_loss(fake, torch.zeros(2)))
    assert torch.isclose(discriminator_loss(real, fake), expected)
    assert torch.isclose(generator_loss(fake), F.mse_loss(fake, torch.ones(2)))


def test_the_discriminator_loss_is_least_at_the_right_answers_and_the_generator_loss_at_fooling_it():
    assert discriminator_loss(torch.ones(5), torch.zeros(5)) == 0
    assert discriminator_loss(torch.zeros(5), torch.ones(5)) == 1
    assert generator_loss(torch.ones(5)) == 0 and generator_loss(torch.zeros(5)) == 1


def test_cycle_loss_is_ten_times_the_two_mean_absolute_errors():
    g = torch.Generator().manual_seed(0)
    y, y_back = torch.rand(2, 1, 4, 4, generator=g), torch.rand(2, 1, 4, 4, generator=g)
    x, x_back = torch.rand(2, 1, 4, 4, generator=g), torch.rand(2, 1, 4, 4, generator=g)
    expected = 10 * (F.l1_loss(y_back, y) + F.l1_loss(x_back, x))
    assert torch.isclose(cycle_loss(y, y_back, x, x_back), expected)
    assert torch.isclose(cycle_loss(y, y_back, x, x_back, weight=1.0), expected / 10)
    assert cycle_loss(y, y, x, x) == 0


def test_task_loss_is_mean_squared_error_for_regression_and_cross_entropy_for_classification():
    out = torch.tensor([[0.5], [2.0], [-1.0]])
    labels = torch.tensor([1.0, 2.0, 0.0])
    assert torch.isclose(task_loss("regression", out, labels), F.mse_loss(out[:, 0], labels))
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.1, 0.2, 0.3]])
    classes = torch.tensor([0, 2])
    assert torch.isclose(task_loss("classification", logits, classes), F.cross_entropy(logits, classes))
    with pytest.raises(ConfigError):
        task_loss("segmentation", out, labels)


def test_prediction_loss_adds_the_translated_sources_and_the_real_targets_terms():
    translated, source_labels = torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 3.0])
    target, target_labels = torch.tensor([[2.0]]), torch.tensor([0.0])
    loss = prediction_loss("regression", translated, source_labels, target, target_labels)
    assert torch.isclose(loss, torch.tensor(0.5 + 4.0))


def test_joint_objective_is_translation_plus_lambda_times_prediction():
    assert torch.isclose(joint_objective(torch.tensor(2.0), torch.tensor(100.0)), torch.tensor(2.1))
    assert torch.isclose(joint_objective(torch.tensor(2.0), torch.tensor(100.0), 0.5), torch.tensor(52.0))
    assert joint_objective(torch.tensor(2.0), None) == 2.0


def _measured_receptive_field(d: PatchDiscriminator, size: int) -> int:
    """Side of the input region that reaches the central output, found by backpropagation."""
    d = d.eval()
    for m in d.modules():  # instance norm mixes the whole image; the field is of the convolutions
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.forward = lambda x: x  # type: ignore[method-assign]
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    reached = (x.grad[0, 0].abs() > 0).nonzero()
    return int(reached[:, 0].max() - reached[:, 0].min() + 1)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_outputs_judge_patches_of_the_stated_size_and_three_layers_give_70(layers):
    torch.manual_seed(0)
    d = PatchDiscriminator(1, width=2, layers=layers)
    assert d.receptive_field == patch_receptive_field(layers)
    assert _measured_receptive_field(d, 160) == patch_receptive_field(layers)
    assert patch_receptive_field(3) == 70


def test_patchgan_has_zhu_et_als_layers():
    d = PatchDiscriminator(1, width=64, layers=3)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1] and all(c.kernel_size == (4, 4) for c in convs)
    norms = [m for m in d.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 3  # none after the first convolution nor the last


def test_resnet_generator_has_zhu_et_als_layers_and_keeps_the_image_size():
    torch.manual_seed(0)
    g = ResnetGenerator(1, 2, width=8, blocks=6)
    convs = [m for m in g.model if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs] == [
        (7, 1, 8),
        (3, 2, 16),
        (3, 2, 32),
        (3, 2, 16),
        (3, 2, 8),
        (7, 1, 2),
    ]
    assert isinstance(convs[3], torch.nn.ConvTranspose2d) and isinstance(g.model[-1], torch.nn.Tanh)
    assert sum(type(m).__name__ == "ResidualBlock" for m in g.model) == 6
    out = g(torch.rand(3, 1, 32, 32) * 2 - 1)
    assert out.shape == (3, 2, 32, 32) and out.abs().max() < 1


def test_weights_start_from_a_normal_of_std_002():
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, width=32, blocks=2)
    weights = torch.cat([m.weight.detach().flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(weights.std()) - 0.02) < 0.002 and abs(float(weights.mean())) < 0.002
