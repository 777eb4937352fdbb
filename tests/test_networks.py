"""Networks: parameter counts against the LR-GAN paper (Yang et al., ICLR 2017), shapes, pose bounds, warping and composition."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_overrides
from lrgan.train.config import PAPER_PARAMETERS, PRESETS, ModelConfig, preset_config
from lrgan.train.networks import (
    ConditionalGenerator, Discriminator, Generator, PoseHead, compose, count_parameters, upsampling, warp,
)


def total_parameters(cfg: ModelConfig) -> int:
    return count_parameters(Generator(cfg)) + count_parameters(Discriminator(cfg))


@pytest.mark.parametrize("preset", ["mnist-one", "mnist-two", "cifar10"])
def test_parameter_counts_match_paper(preset):
    lrgan_paper, dcgan_paper = PAPER_PARAMETERS[preset]
    lrgan = total_parameters(preset_config(preset))
    dcgan = total_parameters(preset_config(preset, timesteps=1))
    assert abs(lrgan - lrgan_paper) / lrgan_paper < 0.01
    assert abs(dcgan - dcgan_paper) / dcgan_paper < 0.01


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_generator_shapes_every_preset(preset):
    cfg = preset_config(preset, **tiny_overrides(norm="batch"))
    noise = torch.randn(3, cfg.timesteps, cfg.noise_dim)
    layers = Generator(cfg)(noise)
    size, k = cfg.image_size, cfg.timesteps - 1
    assert layers.background.shape == (3, 3, size, size)
    assert layers.foreground.shape == (3, k, 3, size, size)
    assert layers.warped_mask.shape == (3, k, 1, size, size)
    assert layers.pose.shape == (3, k, 2, 3)
    assert layers.canvases.shape == (3, cfg.timesteps, 3, size, size)
    assert layers.composite.abs().max() <= 1.0
    assert Discriminator(cfg)(layers.composite).shape == (3,)


def test_dcgan_has_no_objects():
    cfg = preset_config("mnist-one", timesteps=1, **tiny_overrides())
    layers = Generator(cfg)(torch.randn(2, 1, 100))
    assert layers.foreground.shape[1] == 0
    assert torch.equal(layers.composite, layers.background)


def test_conditional_generator_shapes():
    cfg = preset_config("mnist-two", conditional=True, **tiny_overrides())
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    layers = ConditionalGenerator(cfg)(image)
    assert layers.warped_foreground.shape == (2, 2, 3, 64, 64)
    assert layers.composite.shape == image.shape


def test_conditional_generator_rejects_wrong_size():
    cfg = preset_config("mnist-one", conditional=True, **tiny_overrides())
    with pytest.raises(ValueError, match="image must be"):
        ConditionalGenerator(cfg)(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("bounds", ["smooth", "clamp"])
def test_pose_head_bounds(bounds):
    cfg = preset_config("mnist-one", pose_bounds=bounds)
    head = PoseHead(cfg, 16)
    # Start: the scaled identity, the same for every code.
    start = head(torch.randn(4, 16))
    expected_scale = cfg.scale_init if bounds == "smooth" else cfg.scale_min
    assert torch.allclose(start[:, 0, 0], torch.full((4,), expected_scale), atol=1e-5)
    assert torch.allclose(start[:, 0, 1], torch.zeros(4), atol=1e-6)
    # Any code: every term stays within its range.
    torch.nn.init.normal_(head.linear.weight, std=50.0)
    pose = head(torch.randn(256, 16))
    assert pose[:, 0, 0].min() >= cfg.scale_min - 1e-5
    assert pose[:, 0, 0].max() <= 2 * cfg.scale_min + 1e-5
    assert pose[:, 0, 1].abs().max() <= cfg.shear_max + 1e-6
    assert pose[:, :, 2].abs().max() <= 1.0 + 1e-6


@pytest.mark.parametrize("bounds", ["smooth", "clamp"])
def test_pose_head_wider_scale_range(bounds):
    cfg = preset_config("lfw", pose_bounds=bounds, scale_max=4.0, scale_init=2.0)
    head = PoseHead(cfg, 16)
    if bounds == "smooth":
        assert torch.allclose(head(torch.randn(4, 16))[:, 0, 0], torch.full((4,), 2.0), atol=1e-5)
    torch.nn.init.normal_(head.linear.weight, std=50.0)
    scale = head(torch.randn(512, 16))[:, 0, 0]
    assert scale.min() >= 1.3 - 1e-5
    assert scale.max() <= 4.0 + 1e-5
    assert scale.max() > 2 * 1.3 + 0.5  # the range reaches past the published 2 * s_min
    with pytest.raises(ValueError, match="scale_max"):
        preset_config("lfw", scale_max=1.0)


def test_smooth_pose_passes_gradient_at_start():
    cfg = preset_config("mnist-one", pose_bounds="clamp")
    head = PoseHead(cfg, 8)
    head(torch.randn(4, 8))[:, 0, 0].sum().backward()
    # The published clamp starts at its floor, where it passes no gradient.
    assert head.linear.bias.grad[0] == 0
    smooth = PoseHead(preset_config("mnist-one"), 8)
    smooth(torch.randn(4, 8))[:, 0, 0].sum().backward()
    assert smooth.linear.bias.grad[0] > 0


def test_warp_identity_and_zero_outside():
    image = torch.rand(1, 3, 16, 16)
    identity = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]])
    assert torch.allclose(warp(image, identity), image, atol=1e-5)
    # Scale 2 shrinks the source to the central half: the border is zero.
    shrunk = warp(torch.ones(1, 1, 16, 16), torch.tensor([[[2.0, 0, 0], [0, 2.0, 0]]]))
    assert shrunk[0, 0, 0, 0] == 0
    assert shrunk[0, 0, 8, 8] == 1
    assert 0.2 < shrunk.mean() < 0.3


def test_compose_formula():
    canvas = torch.full((1, 3, 8, 8), -1.0)
    appearance = torch.full((1, 3, 8, 8), 1.0)
    mask = torch.full((1, 1, 8, 8), 0.25)
    identity = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]])
    out, _, warped_mask = compose(canvas, appearance, mask, identity)
    assert torch.allclose(warped_mask, mask)
    assert torch.allclose(out, torch.full_like(out, 0.25 * 1 + 0.75 * -1))


def test_resize_upsampling_has_no_transposed_convolutions():
    cfg = preset_config("lfw", conditional=True, upsample="resize", **tiny_overrides())
    generator = ConditionalGenerator(cfg)
    kinds = {type(m) for m in generator.modules()}
    assert torch.nn.ConvTranspose2d in kinds  # only the first 1x1 -> 4x4 layers
    doubling = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d) and m.stride != (1, 1)]
    assert not doubling
    layers = generator(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert layers.composite.shape == (2, 3, 64, 64)
    # Away from the border, nearest doubling and a 3x3 convolution turn a constant input into a
    # constant map. A transposed 4x4 stride-2 convolution gives a period-2 pattern instead.
    for upsample, periodic in (("resize", False), ("transposed", True)):
        torch.manual_seed(0)
        layer = torch.nn.Sequential(*upsampling(4, 1, upsample))
        out = layer(torch.ones(1, 4, 8, 8))[0, 0, 2:-2, 2:-2]
        assert (out.max() - out.min() > 1e-4) == periodic


def test_background_code_width():
    cfg = preset_config("cifar10", conditional=True, bg_code_dim=8, **tiny_overrides())
    generator = ConditionalGenerator(cfg)
    first = generator.background.body[0][0]
    assert first.in_channels == 8
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    assert generator(image).background.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="bg_code_dim"):
        preset_config("cifar10", bg_code_dim=0)
    with pytest.raises(ValueError, match="upsample"):
        preset_config("cifar10", upsample="bicubic")


def test_no_mask_ablation_pastes_whole():
    cfg = preset_config("mnist-one", use_mask=False, **tiny_overrides())
    layers = Generator(cfg)(torch.randn(2, 2, 100))
    assert torch.equal(layers.mask, torch.ones_like(layers.mask))


def test_no_pose_ablation_is_identity():
    cfg = preset_config("mnist-one", use_pose=False, **tiny_overrides())
    layers = Generator(cfg)(torch.randn(2, 2, 100))
    identity = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    assert torch.allclose(layers.pose, identity.expand_as(layers.pose))


def test_config_validation_messages():
    with pytest.raises(ValueError, match="power of two"):
        ModelConfig(image_size=48)
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("svhn")
    with pytest.raises(ValueError, match="fg_channels must list 4"):
        preset_config("mnist-one", image_size=64)


def test_minibatch_spread_sees_collapse():
    """With the spread channels, one image scores differently among copies than in a varied batch.

    Without them the score depends on the image alone.
    """
    torch.manual_seed(0)
    images = torch.rand(8, 1, 32, 32) * 2 - 1
    copies = images[:1].expand(8, -1, -1, -1)
    for spread in (True, False):
        disc = Discriminator(preset_config("mnist-one", channels=1, width=0.25, minibatch_std=spread)).eval()
        with torch.no_grad():
            varied, same = disc(images)[0], disc(copies)[0]
        if spread:
            assert abs(varied - same) > 1e-4
        else:
            assert varied == pytest.approx(same.item(), abs=1e-5)


def test_minibatch_spread_widens_head_only():
    plain = Discriminator(preset_config("mnist-one", width=0.25))
    spread = Discriminator(preset_config("mnist-one", width=0.25, minibatch_std=True))
    assert spread.head.in_channels == 2 * plain.head.in_channels
    assert spread.features(torch.zeros(2, 3, 32, 32)).shape == plain.features(torch.zeros(2, 3, 32, 32)).shape


def test_spectral_discriminator_has_unit_norm_layers():
    disc = Discriminator(preset_config("mnist-one", width=0.25, d_norm="spectral"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in disc.modules())
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs
    disc.train()
    for _ in range(20):  # power iterations converge on the largest singular value
        disc(torch.randn(4, 3, 32, 32))
    for conv in convs:
        largest = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
        assert largest == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="d_norm"):
        preset_config("mnist-one", d_norm="layer")
