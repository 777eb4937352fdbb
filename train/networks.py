"""LR-GAN networks: background and foreground generators, pose head, compositor, discriminator, encoder.

Images are B x C x H x W tensors in [-1, 1]; masks are B x 1 x H x W in [0, 1]. A pose is a
B x 2 x 3 affine matrix in normalised coordinates that maps output positions to source
positions (the convention of ``torch.nn.functional.affine_grid``), so a scale above 1 shrinks
the object on the canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # Up to 32 groups, each of at least 4 channels where the width allows.
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


def up_block(in_channels: int, out_channels: int, norm: str, first: bool = False,
             upsample: str = "transposed") -> nn.Sequential:
    """1x1 -> 4x4 when first (a transposed 4x4 convolution), else doubling the side.

    upsample "transposed": a transposed 4x4 stride-2 convolution, as published. "resize":
    nearest-neighbour doubling, then a 3x3 convolution. Its kernels overlap evenly, so it
    cannot draw the checkerboard that uneven overlap of transposed kernels can.
    """
    if first:
        conv = nn.ConvTranspose2d(in_channels, out_channels, 4, 1, 0, bias=False)
        return nn.Sequential(conv, make_norm(norm, out_channels), nn.ReLU(inplace=True))
    return nn.Sequential(*upsampling(in_channels, out_channels, upsample, bias=False),
                         make_norm(norm, out_channels), nn.ReLU(inplace=True))


def upsampling(in_channels: int, out_channels: int, upsample: str, bias: bool = True) -> list[nn.Module]:
    """Build the layers that double the side: a transposed convolution, or a resize and a convolution."""
    if upsample == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=bias)]
    return [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)]


def down_block(in_channels: int, out_channels: int, norm: str | None) -> nn.Sequential:
    """Strided 4x4 convolution halving the side, LeakyReLU 0.2 (DCGAN discriminator layer)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=norm is None)]
    if norm is not None:
        layers.append(make_norm(norm, out_channels))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation: convolutions N(0, 0.02), normalisation scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class BackgroundGenerator(nn.Module):
    """Gb: code B x D -> background B x C x H x W in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, code_dim: int):
        super().__init__()
        # With T = 1 the background generator is the whole model, so it takes the foreground
        # widths and the network is the paper's DCGAN baseline.
        widths = cfg.scaled(cfg.bg_channels if cfg.timesteps > 1 else cfg.fg_channels)
        blocks = [up_block(code_dim, widths[0], cfg.norm, first=True)]
        for a, b in zip(widths[:-1], widths[1:]):
            blocks.append(up_block(a, b, cfg.norm, upsample=cfg.upsample))
        self.body = nn.Sequential(*blocks)
        self.head = nn.Sequential(*upsampling(widths[-1], cfg.channels, cfg.upsample))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = self.body(code[:, :, None, None])
        return torch.tanh(self.head(x))


class ForegroundGenerator(nn.Module):
    """Gf: object code -> (appearance B x C x H x W in [-1, 1], mask B x 1 x H x W in [0, 1], trunk features)."""

    def __init__(self, cfg: ModelConfig, code_dim: int):
        super().__init__()
        widths = cfg.scaled(cfg.fg_channels)
        blocks = [up_block(code_dim, widths[0], cfg.norm, first=True)]
        for a, b in zip(widths[:-1], widths[1:]):
            blocks.append(up_block(a, b, cfg.norm, upsample=cfg.upsample))
        self.trunk = nn.Sequential(*blocks)
        self.appearance_head = nn.Sequential(*upsampling(widths[-1], cfg.channels, cfg.upsample))
        self.mask_head = nn.Sequential(*upsampling(widths[-1], 1, cfg.upsample))
        self.feature_channels = widths[-1]
        self.mask_sharpness = cfg.mask_sharpness

    def forward(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.trunk(code[:, :, None, None])
        appearance = torch.tanh(self.appearance_head(features))
        logits = self.mask_head(features)
        if self.mask_sharpness != 1.0:
            logits = logits * self.mask_sharpness
        mask = torch.sigmoid(logits)
        return appearance, mask, features


class PoseHead(nn.Module):
    """Tf: object code -> 2 x 3 affine matrix (output -> source coordinates) within the configured bounds.

    Weights start at zero, so every object starts at the same pose: the scaled identity.
    """

    def __init__(self, cfg: ModelConfig, code_dim: int):
        super().__init__()
        self.cfg = cfg
        self.linear = nn.Linear(code_dim, 6)
        nn.init.zeros_(self.linear.weight)
        with torch.no_grad():
            bias = torch.zeros(6)
            if cfg.pose_bounds == "clamp":
                bias[0] = bias[4] = cfg.scale_min
            else:
                # scale = s_min + (s_max - s_min) * sigmoid(u); solve for u at scale_init.
                fraction = (cfg.scale_init - cfg.scale_min) / (cfg.scale_upper - cfg.scale_min)
                fraction = min(max(fraction, 1e-3), 1 - 1e-3)
                bias[0] = bias[4] = math.log(fraction / (1 - fraction))
            self.linear.bias.copy_(bias)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        raw = self.linear(code)  # B x 6: [a11, a12, tx, a21, a22, ty]
        cfg = self.cfg
        if not cfg.use_pose:
            eye = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], device=code.device, dtype=code.dtype)
            return (raw * 0 + eye).view(-1, 2, 3)
        a11, a12, tx, a21, a22, ty = raw.unbind(dim=1)
        if cfg.pose_bounds == "clamp":
            a11 = a11.clamp(cfg.scale_min, cfg.scale_upper)
            a22 = a22.clamp(cfg.scale_min, cfg.scale_upper)
            a12 = a12.clamp(-cfg.shear_max, cfg.shear_max)
            a21 = a21.clamp(-cfg.shear_max, cfg.shear_max)
            tx = tx.clamp(-1.0, 1.0)
            ty = ty.clamp(-1.0, 1.0)
        else:
            span = cfg.scale_upper - cfg.scale_min
            a11 = cfg.scale_min + span * torch.sigmoid(a11)
            a22 = cfg.scale_min + span * torch.sigmoid(a22)
            a12 = cfg.shear_max * torch.tanh(a12)
            a21 = cfg.shear_max * torch.tanh(a21)
            tx = torch.tanh(tx)
            ty = torch.tanh(ty)
        return torch.stack([a11, a12, tx, a21, a22, ty], dim=1).view(-1, 2, 3)


def warp(image: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """ST(image, pose): sample B x C x H x W through the affine grid, zeros outside the source."""
    grid = F.affine_grid(pose, list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass
class Layers:
    """Everything one forward pass draws. Object tensors carry an object axis K = T - 1.

    background:        B x C x H x W, in [-1, 1]
    foreground:        B x K x C x H x W, appearance before the warp, in [-1, 1]
    mask:              B x K x 1 x H x W, before the warp, in [0, 1]
    warped_foreground: B x K x C x H x W, appearance placed on the canvas
    warped_mask:       B x K x 1 x H x W, mask placed on the canvas (zero outside the object)
    pose:              B x K x 2 x 3, output -> source affine matrices
    canvases:          B x T x C x H x W, x_0 (the background) .. x_{T-1} (the composite)
    """

    background: torch.Tensor
    foreground: torch.Tensor
    mask: torch.Tensor
    warped_foreground: torch.Tensor
    warped_mask: torch.Tensor
    pose: torch.Tensor
    canvases: torch.Tensor

    @property
    def composite(self) -> torch.Tensor:
        return self.canvases[:, -1]


class ObjectEmbedding(nn.Module):
    """El_f: object code for t > 1 from [h_t, Ec_f(Pc_f(previous object's features))]."""

    def __init__(self, code_dim: int, feature_channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.features = nn.Linear(feature_channels, code_dim)
        self.mix = nn.Sequential(nn.Linear(2 * code_dim, code_dim), nn.Tanh())

    def forward(self, code: torch.Tensor, previous_features: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(previous_features).flatten(1)
        return self.mix(torch.cat([code, torch.relu(self.features(pooled))], dim=1))


class ObjectPath(nn.Module):
    """The per-object part shared by both modes: embedding, foreground generator, pose head."""

    def __init__(self, cfg: ModelConfig, code_dim: int):
        super().__init__()
        self.cfg = cfg
        self.generator = ForegroundGenerator(cfg, code_dim)
        self.pose_head = PoseHead(cfg, code_dim)
        # The first object has nothing before it; later objects see what was drawn.
        self.embedding = (
            ObjectEmbedding(code_dim, self.generator.feature_channels) if cfg.n_objects > 1 else None
        )

    def forward(
        self, code: torch.Tensor, previous_features: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if previous_features is not None and self.embedding is not None:
            code = self.embedding(code, previous_features)
        appearance, mask, features = self.generator(code)
        if not self.cfg.use_mask:
            mask = torch.ones_like(mask)
        pose = self.pose_head(code)
        return appearance, mask, pose, features


def compose(canvas: torch.Tensor, appearance: torch.Tensor, mask: torch.Tensor, pose: torch.Tensor):
    """Paste one object on the canvas: x_t = ST(m, a) * ST(f, a) + (1 - ST(m, a)) * x_{t-1}."""
    warped_foreground = warp(appearance, pose)
    warped_mask = warp(mask, pose)
    return warped_mask * warped_foreground + (1 - warped_mask) * canvas, warped_foreground, warped_mask


def stack_layers(background, objects, canvases, batch, cfg, device, dtype) -> Layers:
    """Stack per-object lists into a Layers; with T = 1 the object tensors have K = 0."""
    size = cfg.image_size
    if objects:
        fg, mk, wfg, wmk, poses = (torch.stack(list(parts), dim=1) for parts in zip(*objects))
    else:
        fg = torch.zeros(batch, 0, cfg.channels, size, size, device=device, dtype=dtype)
        wfg = fg
        mk = torch.zeros(batch, 0, 1, size, size, device=device, dtype=dtype)
        wmk = mk
        poses = torch.zeros(batch, 0, 2, 3, device=device, dtype=dtype)
    return Layers(background, fg, mk, wfg, wmk, poses, torch.stack(canvases, dim=1))


class Generator(nn.Module):
    """Unconditional LR-GAN generator: noise B x T x Z -> Layers.

    z_0 goes straight into the background generator, so T = 1 is exactly DCGAN. An LSTM cell
    runs over z_0 .. z_{T-1}; its hidden state after z_t is the code of object t.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.background = BackgroundGenerator(cfg, cfg.noise_dim)
        if cfg.n_objects:
            self.lstm = nn.LSTMCell(cfg.noise_dim, cfg.hidden_dim)
            self.objects = ObjectPath(cfg, cfg.hidden_dim)
        init_dcgan(self)

    def forward(self, noise: torch.Tensor) -> Layers:
        cfg = self.cfg
        if noise.dim() != 3 or noise.shape[1] != cfg.timesteps or noise.shape[2] != cfg.noise_dim:
            raise ValueError(
                f"noise must be B x {cfg.timesteps} x {cfg.noise_dim}, got {tuple(noise.shape)}"
            )
        batch = noise.shape[0]

        # Background from z_0; the LSTM reads z_0 too so objects know the scene.
        background = self.background(noise[:, 0])
        canvas = background
        canvases = [background]
        objects = []
        if cfg.n_objects:
            h = noise.new_zeros(batch, cfg.hidden_dim)
            c = noise.new_zeros(batch, cfg.hidden_dim)
            h, c = self.lstm(noise[:, 0], (h, c))

        # Each later timestep draws one object and pastes it on the canvas.
        previous = None
        for t in range(1, cfg.timesteps):
            h, c = self.lstm(noise[:, t], (h, c))
            appearance, mask, pose, previous = self.objects(h, previous)
            canvas, warped_fg, warped_mask = compose(canvas, appearance, mask, pose)
            canvases.append(canvas)
            objects.append((appearance, mask, warped_fg, warped_mask, pose))
        return stack_layers(background, objects, canvases, batch, cfg, noise.device, noise.dtype)


class Discriminator(nn.Module):
    """DCGAN discriminator: image B x C x H x W -> one logit per image (B)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        widths = cfg.scaled(cfg.d_channels)
        inner_norm = "batch" if cfg.d_norm == "batch" else None
        blocks = [down_block(cfg.channels, widths[0], None)]
        for a, b in zip(widths[:-1], widths[1:]):
            blocks.append(down_block(a, b, inner_norm))
        self.trunk = nn.Sequential(*blocks)
        self.minibatch_std = cfg.minibatch_std
        self.head = nn.Conv2d(widths[-1] * (2 if cfg.minibatch_std else 1), 1, 4, 1, 0)
        self.feature_channels = widths[-1]
        init_dcgan(self)
        if cfg.d_norm == "spectral":
            for module in list(self.modules()):
                if isinstance(module, nn.Conv2d):
                    nn.utils.parametrizations.spectral_norm(module)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Trunk features B x F x 4 x 4, for metrics built on the discriminator."""
        return self.trunk(image)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.trunk(image)
        if self.minibatch_std:
            features = append_batch_spread(features)
        return self.head(features).flatten()


def append_batch_spread(features: torch.Tensor) -> torch.Tensor:
    """Add, for each feature channel, its standard deviation over the batch (averaged over positions).

    One spread per channel rather than the single averaged number of Karras et al.: in a
    layered image the background's spread would hide an object drawn the same every time.
    """
    spread = features.float().std(dim=0, unbiased=False).mean(dim=(1, 2)).to(features.dtype)
    extra = spread[None, :, None, None].expand(features.shape[0], -1, features.shape[2], features.shape[3])
    return torch.cat([features, extra], dim=1)


class Encoder(nn.Module):
    """Conditional mode: image or residual B x C x H x W -> code B x D (DCGAN discriminator layout)."""

    def __init__(self, cfg: ModelConfig, code_dim: int):
        super().__init__()
        widths = cfg.scaled(cfg.d_channels)
        blocks = [down_block(cfg.channels, widths[0], None)]
        for a, b in zip(widths[:-1], widths[1:]):
            blocks.append(down_block(a, b, cfg.encoder_norm))
        self.trunk = nn.Sequential(*blocks)
        self.head = nn.Conv2d(widths[-1], code_dim, 4, 1, 0)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(image)).flatten(1)


class ConditionalGenerator(nn.Module):
    """Conditional LR-GAN: a real image B x C x H x W -> Layers that recompose it.

    One encoder reads the image for the background code (in place of z_0), then reads the
    residual (image minus the canvas so far) for each object's code.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.timesteps < 2:
            raise ValueError("the conditional model needs timesteps >= 2 (a background and an object)")
        self.cfg = cfg
        self.encoder = Encoder(cfg, cfg.noise_dim)
        self.background = BackgroundGenerator(cfg, cfg.background_code_dim)
        self.objects = ObjectPath(cfg, cfg.noise_dim)
        init_dcgan(self)

    def forward(self, image: torch.Tensor) -> Layers:
        cfg = self.cfg
        expected = (cfg.channels, cfg.image_size, cfg.image_size)
        if image.dim() != 4 or tuple(image.shape[1:]) != expected:
            raise ValueError(f"image must be B x {' x '.join(map(str, expected))}, got {tuple(image.shape)}")
        batch = image.shape[0]

        # Background from the image's own code, or its first bg_code_dim entries.
        background = self.background(self.encoder(image)[:, :cfg.background_code_dim])
        canvas = background
        canvases = [background]
        objects = []

        # Each object explains what the canvas so far misses.
        previous = None
        for _ in range(1, cfg.timesteps):
            code = self.encoder(image - canvas)
            appearance, mask, pose, previous = self.objects(code, previous)
            canvas, warped_fg, warped_mask = compose(canvas, appearance, mask, pose)
            canvases.append(canvas)
            objects.append((appearance, mask, warped_fg, warped_mask, pose))
        return stack_layers(background, objects, canvases, batch, cfg, image.device, image.dtype)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
