"""Model and training configuration: one dataclass per concern, presets as one table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """Architecture of one LR-GAN: generator, discriminator and, for the conditional mode, encoder."""

    preset: str = "mnist-one"
    image_size: int = 32                 # square canvas side in pixels, a power of two >= 16
    channels: int = 3                    # image channels (MNIST images are gray stored as RGB)
    timesteps: int = 2                   # 1 = DCGAN (background only), T >= 2 adds T - 1 objects
    noise_dim: int = 100                 # dimension of each z_t
    hidden_dim: int = 100                # LSTM hidden size, also the object code size
    fg_channels: tuple[int, ...] = (512, 256, 128)  # foreground trunk widths, coarse to fine
    bg_channels: tuple[int, ...] = (256, 128, 64)   # background generator widths (half the trunk's)
    d_channels: tuple[int, ...] = (64, 128, 256)    # discriminator widths, fine to coarse
    width: float = 1.0                   # multiplier on all widths above (0.5 halves them)
    # Pose: scale in [s_min, s_max] (scale > 1 shrinks the object; s_max defaults to
    # 2 s_min, as published), the two off-diagonal terms in [-r, r], translation in [-1, 1].
    scale_min: float = 1.2
    scale_max: float | None = None
    shear_max: float = 0.1
    # "smooth": sigmoid and tanh ranges with the scale starting at scale_init, which passes
    # gradient everywhere; "clamp": the published hard clamps, scale starting at scale_min.
    pose_bounds: str = "smooth"
    scale_init: float = 1.5
    use_pose: bool = True                # False: identity warp (ablation)
    use_mask: bool = True                # False: the foreground is pasted whole (ablation)
    # Normalisation of generator and encoder layers. "batch" as published; "group" does not
    # depend on the batch, so an exported model gives the same layers for any batch.
    norm: str = "batch"
    encoder_norm: str = "batch"
    conditional: bool = False
    # Minibatch standard deviation (after Karras et al., ICLR 2018): the discriminator's last
    # block receives each feature's standard deviation over the batch, so a generator that
    # draws one shape for every noise is easy to reject. Off in the published model.
    minibatch_std: bool = False
    # Discriminator normalisation: "batch" (DCGAN, as published) or "spectral" (spectral norm
    # on every convolution, no batch norm), which bounds how sharply the discriminator can change.
    d_norm: str = "batch"
    # Multiplier on the mask logits before the sigmoid. Above 1 it hardens soft mask edges
    # without moving the 0.5 boundary; `lrgan export --mask-sharpness` sets it on a trained model.
    mask_sharpness: float = 1.0
    # How the generators double the side: "transposed" 4x4 convolutions (as published) or
    # "resize" (nearest-neighbour doubling and a 3x3 convolution, free of checkerboards).
    upsample: str = "transposed"
    # Conditional mode: the background generator reads only the first this many entries of
    # the image's code (None: all noise_dim). A narrow code can carry the scene's layout but
    # not the object, which then has to come from the object layer.
    bg_code_dim: int | None = None

    def __post_init__(self) -> None:
        self.fg_channels = tuple(self.fg_channels)
        self.bg_channels = tuple(self.bg_channels)
        self.d_channels = tuple(self.d_channels)
        self.validate()

    def validate(self) -> None:
        size = self.image_size
        if size < 16 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two >= 16, got {size}")
        n_up = _upsampling_steps(size)
        for name in ("fg_channels", "bg_channels", "d_channels"):
            widths = getattr(self, name)
            if len(widths) != n_up:
                raise ValueError(
                    f"{name} must list {n_up} widths for image_size {size}, got {len(widths)}: {widths}"
                )
        if self.timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {self.timesteps}")
        if self.pose_bounds not in ("smooth", "clamp"):
            raise ValueError(f"pose_bounds must be 'smooth' or 'clamp', got {self.pose_bounds!r}")
        if self.mask_sharpness <= 0:
            raise ValueError(f"mask_sharpness must be positive, got {self.mask_sharpness}")
        if self.upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample must be 'transposed' or 'resize', got {self.upsample!r}")
        if self.bg_code_dim is not None and not 1 <= self.bg_code_dim <= self.noise_dim:
            raise ValueError(f"bg_code_dim must lie in [1, noise_dim = {self.noise_dim}], got {self.bg_code_dim}")
        if self.d_norm not in ("batch", "spectral"):
            raise ValueError(f"d_norm must be 'batch' or 'spectral', got {self.d_norm!r}")
        for name in ("norm", "encoder_norm"):
            if getattr(self, name) not in ("batch", "group"):
                raise ValueError(f"{name} must be 'batch' or 'group', got {getattr(self, name)!r}")
        if self.scale_max is not None and self.scale_max <= self.scale_min:
            raise ValueError(f"scale_max {self.scale_max} must be above scale_min {self.scale_min}")
        if not self.scale_min <= self.scale_init <= self.scale_upper:
            raise ValueError(
                f"scale_init {self.scale_init} must lie in [scale_min, scale_max] = "
                f"[{self.scale_min}, {self.scale_upper}]"
            )
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")

    def scaled(self, widths: tuple[int, ...]) -> tuple[int, ...]:
        """Apply the width multiplier, keeping every layer at least 8 channels wide."""
        return tuple(max(8, int(round(w * self.width))) for w in widths)

    @property
    def background_code_dim(self) -> int:
        return self.bg_code_dim if self.bg_code_dim is not None else self.noise_dim

    @property
    def scale_upper(self) -> float:
        """The largest pose scale: scale_max, or 2 * scale_min when it is not set."""
        return self.scale_max if self.scale_max is not None else 2 * self.scale_min

    @property
    def n_objects(self) -> int:
        return self.timesteps - 1

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("fg_channels", "bg_channels", "d_channels"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


def _upsampling_steps(image_size: int) -> int:
    """Count the stride-2 layers between a 4x4 map and the canvas, plus the first 4x4 layer."""
    steps = 0
    size = 4
    while size < image_size:
        size *= 2
        steps += 1
    return steps


# Configurations of Yang et al., "LR-GAN", ICLR 2017 (appendix, table 2): image size,
# timesteps, widths and minimum object scale. The conditional mode adds an encoder.
PRESETS: dict[str, dict[str, Any]] = {
    "mnist-one": dict(
        image_size=32, timesteps=2, fg_channels=(512, 256, 128), bg_channels=(256, 128, 64),
        d_channels=(64, 128, 256), scale_min=1.2, shear_max=0.3,
    ),
    "mnist-two": dict(
        image_size=64, timesteps=3, fg_channels=(512, 256, 128, 64), bg_channels=(256, 128, 64, 32),
        d_channels=(64, 128, 256, 512), scale_min=2.0, scale_init=2.5, shear_max=0.3,
    ),
    "cifar10": dict(
        image_size=32, timesteps=2, fg_channels=(512, 256, 128), bg_channels=(256, 128, 64),
        d_channels=(64, 128, 256), scale_min=1.2, shear_max=0.1,
    ),
    "cub200": dict(
        image_size=64, timesteps=2, fg_channels=(1024, 512, 256, 128), bg_channels=(512, 256, 128, 64),
        d_channels=(128, 256, 512, 1024), scale_min=1.2, shear_max=0.1,
    ),
    "lfw": dict(
        image_size=64, timesteps=2, fg_channels=(512, 256, 128, 64), bg_channels=(256, 128, 64, 32),
        d_channels=(64, 128, 256, 512), scale_min=1.3, scale_init=1.6, shear_max=0.1,
    ),
}

# Parameter counts (LR-GAN, DCGAN) that Yang et al. report, generator plus discriminator.
PAPER_PARAMETERS: dict[str, tuple[float | None, float | None]] = {
    "mnist-one": (5.25e6, 4.11e6),
    "mnist-two": (7.53e6, 6.33e6),
    "cifar10": (5.26e6, 4.11e6),
    "cub200": (27.3e6, 6.34e6),
    "lfw": (None, None),
}


def preset_config(name: str, **overrides: Any) -> ModelConfig:
    """Build the ModelConfig of a preset, with keyword overrides (timesteps=1 gives DCGAN)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS[name], preset=name)
    values.update(overrides)
    return ModelConfig(**values)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of one training run."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    generator_lr: float | None = None   # generator (and encoder) learning rate; None uses lr
    beta1: float = 0.5
    beta2: float = 0.999
    # From this step on, both learning rates fall linearly to zero at the last step
    # (None keeps them constant).
    decay_start: int | None = None
    seed: int = 0
    # Conditional mode: L1 reconstruction weight, recon-only warm-up steps before the
    # adversarial term, and where the adversarial term looks. "cross" pastes each image's
    # foreground on another image's background (a random pairing within the batch);
    # "recon" judges the reconstruction itself, as published.
    recon_weight: float = 10.0
    warmup_steps: int = 300
    adversarial: str = "cross"
    adv_weight: float = 1.0
    # Weight of a prior that keeps each object's mask centred in its own canvas, so the pose
    # head, not the appearance, has to carry the object's position (0 turns it off).
    center_weight: float = 0.0
    # Weight of a prior that pushes every mask value towards 0 or 1: the mean of
    # min(m, 1 - m) over the object masks (0 turns it off).
    mask_binary_weight: float = 0.0
    # Adversarial loss: "bce" (the published non-saturating cross-entropy) or "hinge".
    gan_loss: str = "bce"
    # Weights of the re-framing consistency prior (LFW only; 0 turns a term off). Each photo
    # is decomposed twice, as it is and re-framed, and the re-framed decomposition must equal
    # the first one moved by the known re-framing: the pose composed with the re-framing
    # (equivariance_weight), and the placed mask moved by it (equivariance_mask_weight).
    # The mask term alone is satisfied by empty masks, and it emptied them within 250 steps.
    equivariance_weight: float = 0.0
    equivariance_mask_weight: float = 0.0
    # Weight of the anchor prior (LFW only). The unchanged deep-funneled photos are aligned,
    # so in them the object canvas should be the centred square at scale_init. In a
    # re-framed photo it should be that square moved by the re-framing.
    anchor_weight: float = 0.0
    sample_every: int = 250
    checkpoint_every: int = 250
    eval_every: int = 250
    log_every: int = 10
    # Before each validation and checkpoint, recompute batch-norm running statistics as
    # exact averages over this many training batches (0 keeps the running averages).
    # Training itself uses batch statistics, so this changes only eval-mode outputs.
    recalibrate_batches: int = 32
    bf16: bool = True            # bf16 autocast on CUDA (ignored on the CPU)
    channels_last: bool = True   # channels-last memory on CUDA (ignored on the CPU)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uses_reframing_pairs(self) -> bool:
        """True when a prior needs each LFW photo both as it is and re-framed."""
        return self.equivariance_weight > 0 or self.equivariance_mask_weight > 0 or self.anchor_weight > 0

    def validate(self) -> None:
        if self.adversarial not in ("cross", "recon", "none"):
            raise ValueError(f"adversarial must be 'cross', 'recon' or 'none', got {self.adversarial!r}")
        if self.gan_loss not in ("bce", "hinge"):
            raise ValueError(f"gan_loss must be 'bce' or 'hinge', got {self.gan_loss!r}")
        for name in ("mask_binary_weight", "equivariance_weight", "equivariance_mask_weight", "anchor_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("steps", "batch_size", "sample_every", "checkpoint_every", "eval_every", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (batch norm and cross-composition need pairs)")
