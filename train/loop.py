"""The training loop: both modes, checkpoints with exact resume, sample grids and validation."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoint import load_checkpoint, save_atomic
from .config import ModelConfig, TrainConfig
from .datasets import Truth
from .metrics import background_gray_mae, mask_center, mask_iou, nearly_binary, psnr
from .networks import ConditionalGenerator, Discriminator, Generator, Layers, warp
from .visualize import save_grid, to_uint8

log = logging.getLogger(__name__)

VALIDATION_SIZE = 512


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name} requested but CUDA is not available; use --device cpu")
    device = torch.device(name)
    # Under torchrun each process takes the GPU of its local rank.
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group that torchrun describes in the environment; returns (rank, world size).

    NCCL on CUDA, gloo on the CPU. A single process (no WORLD_SIZE, or 1) returns (0, 1).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def build_generator(cfg: ModelConfig) -> torch.nn.Module:
    return ConditionalGenerator(cfg) if cfg.conditional else Generator(cfg)


class Trainer:
    """One run in its own folder: config.json, log.jsonl, samples/, last.pt and best.pt."""

    def __init__(self, run_dir: str | Path, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 source, valid_source=None, device: str = "auto"):
        train_cfg.validate()
        self.run_dir = Path(run_dir)
        self.model_cfg = model_cfg
        self.cfg = train_cfg
        self.source = source
        self.valid = valid_source
        self.device = pick_device(device)
        self.rank, self.world = init_distributed(self.device)
        if train_cfg.batch_size % self.world:
            raise ValueError(f"batch_size {train_cfg.batch_size} must be divisible by the {self.world} processes")
        self.step = 0
        self.best_score = -math.inf

        # bf16 autocast and channels-last memory only pay on CUDA; the CPU keeps float32.
        on_cuda = self.device.type == "cuda"
        self.autocast = on_cuda and train_cfg.bf16 and torch.cuda.is_bf16_supported()
        memory_format = torch.channels_last if on_cuda and train_cfg.channels_last else torch.contiguous_format

        torch.manual_seed(train_cfg.seed)
        self.g_module = build_generator(model_cfg).to(self.device, memory_format=memory_format)
        self.d_module = Discriminator(model_cfg).to(self.device, memory_format=memory_format)
        self.generator, self.discriminator = self.g_module, self.d_module
        if self.world > 1:
            # DDP copies rank 0's weights to every process and averages gradients.
            ids = [self.device.index] if on_cuda else None
            self.generator = DistributedDataParallel(self.g_module, device_ids=ids)
            self.discriminator = DistributedDataParallel(self.d_module, device_ids=ids)
            torch.manual_seed(train_cfg.seed * 1000 + self.rank)  # different noise on each process
        betas = (train_cfg.beta1, train_cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g_module.parameters(), lr=train_cfg.generator_lr or train_cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d_module.parameters(), lr=train_cfg.lr, betas=betas)

        # Fixed inputs for the sample grids, so grids of different steps compare.
        fixed = torch.Generator().manual_seed(train_cfg.seed + 12345)
        if model_cfg.conditional:
            grid_source = valid_source if valid_source is not None else source
            count = min(8, len(grid_source))
            spread = np.linspace(0, len(grid_source) - 1, count).round().astype(int)
            self.fixed_input = to_channels(torch.from_numpy(grid_source.batch(spread)), model_cfg.channels)
        else:
            self.fixed_input = torch.randn(8, model_cfg.timesteps, model_cfg.noise_dim, generator=fixed)

    # ----- state -----

    def state(self) -> dict[str, Any]:
        return {
            "format": "lrgan-checkpoint-1",
            "model_config": self.model_cfg.to_dict(),
            "train_config": asdict(self.cfg),
            "step": self.step,
            "best_score": self.best_score,
            "generator": self.g_module.state_dict(),
            "discriminator": self.d_module.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": _numpy_state(),
                "python": _python_state(),
            },
        }

    def load_state(self, state: dict[str, Any]) -> None:
        saved_cfg = ModelConfig.from_dict(state["model_config"])
        if saved_cfg != self.model_cfg:
            raise ValueError("the checkpoint was trained with another model config; resume without changing it")
        self.g_module.load_state_dict(state["generator"])
        self.d_module.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.best_score = float(state["best_score"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        _set_numpy_state(rng["numpy"])
        _set_python_state(rng["python"])
        if self.world > 1:
            # NOTE: only rank 0's random state is saved, so other ranks draw new noise after a
            # resume; single-process resume is exact.
            torch.manual_seed(self.cfg.seed * 1000 + self.rank + self.step)

    def save(self, name: str) -> Path:
        """Write a checkpoint from rank 0 (every rank must call this, for the barrier)."""
        path = self.run_dir / name
        if self.rank == 0:
            save_atomic(self.state(), path)
        if self.world > 1:
            dist.barrier()
        return path

    # ----- data -----

    def batch_indices(self, step: int) -> torch.Tensor:
        """Indices of the batch at `step`: each epoch is a permutation seeded by (seed, epoch)."""
        n = len(self.source)
        size = self.cfg.batch_size
        per_epoch = max(1, n // size)
        epoch, position = divmod(step, per_epoch)
        if hasattr(self.source, "epoch"):
            self.source.epoch = epoch  # sources that augment draw new variations each epoch
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.cfg.seed * 100003 + epoch))
        batch = order[position * size:(position + 1) * size]
        # With several processes each takes every world-th image of the global batch.
        return batch[self.rank::self.world]

    def load_batch(self, source, indices) -> torch.Tensor:
        """Load images as B x C x H x W on the device, converted to the model's channel count."""
        return to_channels(torch.from_numpy(source.batch(indices)), self.model_cfg.channels).to(self.device)

    # ----- steps -----

    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        self.opt_d.zero_grad(set_to_none=True)
        logits_real = self.discriminator(real)
        logits_fake = self.discriminator(fake.detach())
        if self.cfg.gan_loss == "hinge":
            loss = F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
        else:
            loss = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real)) + \
                F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
        loss.backward()
        self.opt_d.step()
        return loss.item()

    def generator_adversarial_loss(self, fake: torch.Tensor) -> torch.Tensor:
        logits = self.discriminator(fake)
        if self.cfg.gan_loss == "hinge":
            return -logits.mean()
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def train_step(self, real: torch.Tensor, thetas: torch.Tensor | None = None) -> dict[str, float]:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            if self.model_cfg.conditional:
                return self.conditional_step(real, thetas)
            return self.unconditional_step(real)

    def unconditional_step(self, real: torch.Tensor) -> dict[str, float]:
        cfg = self.model_cfg
        noise = torch.randn(real.shape[0], cfg.timesteps, cfg.noise_dim, device=self.device)
        layers = self.generator(noise)
        fake = layers.composite

        # Discriminator: real against generated composites.
        loss_d = self.discriminator_step(real, fake)

        # Generator: make the discriminator call the composites real.
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = self.generator_adversarial_loss(fake)
        losses = {"loss_d": loss_d, "loss_g": loss_g.item()}
        if self.cfg.mask_binary_weight > 0 and layers.mask.shape[1] > 0:
            loss_binary = mask_binary_loss(layers.mask)
            loss_g = loss_g + self.cfg.mask_binary_weight * loss_binary
            losses["loss_binary"] = loss_binary.item()
        loss_g.backward()
        self.opt_g.step()
        return losses

    def conditional_step(self, real: torch.Tensor, thetas: torch.Tensor | None = None) -> dict[str, float]:
        """Run one optimisation step of the conditional model.

        With `thetas` (B x 2 x 3), `real` contains 2B images: B re-framed photos, then the same
        photos unchanged, and the re-framing consistency prior joins the losses.
        """
        cfg = self.cfg
        layers = self.generator(real)
        loss_rec = F.l1_loss(layers.composite, real)
        stats = {"loss_rec": loss_rec.item()}
        loss_g = cfg.recon_weight * loss_rec
        if thetas is not None:
            loss_mask, loss_pose = reframing_inconsistency(layers, thetas)
            stats.update(loss_equi_mask=loss_mask.item(), loss_equi_pose=loss_pose.item())
            loss_g = loss_g + cfg.equivariance_weight * loss_pose + cfg.equivariance_mask_weight * loss_mask
            if cfg.anchor_weight > 0:
                loss_anchor = anchor_offset(layers.pose, thetas, self.model_cfg.scale_init)
                stats["loss_anchor"] = loss_anchor.item()
                loss_g = loss_g + cfg.anchor_weight * loss_anchor
        if cfg.center_weight > 0:
            loss_center = mask_center_offset(layers.mask)
            stats["loss_center"] = loss_center.item()
            loss_g = loss_g + cfg.center_weight * loss_center

        # After the warm-up, an adversarial term: on cross-composites (this image's objects on
        # another image's background) or on the reconstruction itself.
        if self.step >= cfg.warmup_steps and cfg.adversarial != "none":
            fake = cross_composite(layers) if cfg.adversarial == "cross" else layers.composite
            stats["loss_d"] = self.discriminator_step(real, fake)
            loss_adv = self.generator_adversarial_loss(fake)
            stats["loss_adv"] = loss_adv.item()
            loss_g = loss_g + cfg.adv_weight * loss_adv

        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return stats

    def apply_lr_schedule(self) -> None:
        """Set both optimizers' learning rates for the current step (linear decay after decay_start)."""
        cfg = self.cfg
        factor = 1.0
        if cfg.decay_start is not None and self.step >= cfg.decay_start:
            factor = max(0.0, (cfg.steps - self.step) / max(1, cfg.steps - cfg.decay_start))
        for optimizer, base in ((self.opt_g, cfg.generator_lr or cfg.lr), (self.opt_d, cfg.lr)):
            for group in optimizer.param_groups:
                group["lr"] = base * factor

    @torch.no_grad()
    def recalibrate_batch_norm(self) -> None:
        """Recompute the generator's batch-norm running statistics as exact averages.

        The momentum averages trail the weights, and eval mode (validation, export) uses
        them, so they are recomputed over fixed training batches in train mode.
        """
        layers = [m for m in self.g_module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not layers or self.cfg.recalibrate_batches <= 0:
            return
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average
        fixed = torch.Generator().manual_seed(self.cfg.seed + 4242)
        was_training = self.g_module.training
        self.g_module.train()
        try:
            for _ in range(self.cfg.recalibrate_batches):
                if self.model_cfg.conditional:
                    indices = torch.randint(len(self.source), (self.cfg.batch_size,), generator=fixed)
                    self.g_module(self.load_batch(self.source, indices))
                else:
                    noise = torch.randn(self.cfg.batch_size, self.model_cfg.timesteps, self.model_cfg.noise_dim,
                                        generator=fixed)
                    self.g_module(noise.to(self.device))
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
            self.g_module.train(was_training)

    # ----- validation and pictures -----

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Score the generator in eval mode: mask quality, and for the conditional mode the
        reconstruction and, with ground truth, IoU, background and centre errors."""
        generator = self.g_module
        generator.eval()
        try:
            if not self.model_cfg.conditional:
                noise = torch.randn(VALIDATION_SIZE, self.model_cfg.timesteps, self.model_cfg.noise_dim,
                                    generator=torch.Generator().manual_seed(self.cfg.seed + 777))
                layers = generator(noise.to(self.device))
                if layers.warped_mask.shape[1] == 0:
                    return {}
                # The object's own (unwarped) mask: one that fills its whole canvas is no shape.
                masks = layers.mask[:, 0, 0].cpu().numpy()
                return {"binary_mask_share": float(nearly_binary(masks).mean())}
            if self.valid is None:
                return {}
            # Evenly spaced, so a sorted folder of classes gives every class a share.
            count = min(VALIDATION_SIZE, len(self.valid))
            indices = np.linspace(0, len(self.valid) - 1, count).round().astype(int)
            images = self.load_batch(self.valid, indices)
            layers = generator(images)
            if hasattr(self.valid, "truth"):
                return score_decomposition(layers, self.valid.truth(indices))
            return score_unlabelled(layers, images)
        finally:
            generator.train()

    @torch.no_grad()
    def write_samples(self) -> Path:
        self.g_module.eval()
        try:
            fixed = self.fixed_input.to(self.device)
            layers = self.g_module(fixed)
            real = fixed if self.model_cfg.conditional else None
            return save_grid(layers, self.run_dir / "samples" / f"step_{self.step:07d}.png", real=real)
        finally:
            self.g_module.train()

    # ----- the loop -----

    def run(self, resume: bool = False, progress: bool = True) -> dict[str, float]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        last = self.run_dir / "last.pt"
        if self.rank == 0:
            # A process killed while saving leaves a partial temporary file, never a torn checkpoint.
            for stale in self.run_dir.glob(".*.pt.*.tmp"):
                stale.unlink(missing_ok=True)
        if resume and last.exists():
            self.load_state(load_checkpoint(last, map_location=self.device))
            log.info("resumed from %s at step %d", last, self.step)
        elif resume:
            log.info("no checkpoint at %s; starting from step 0", last)
        main = self.rank == 0
        if main:
            config_record = {"model": self.model_cfg.to_dict(), "train": asdict(self.cfg),
                             "device": str(self.device), "processes": self.world}
            (self.run_dir / "config.json").write_text(json.dumps(config_record, indent=2) + "\n")

        cfg = self.cfg
        metrics: dict[str, float] = {}
        bar = tqdm(total=cfg.steps, initial=self.step, disable=None if (progress and main) else True, desc="train", unit="step")
        started = time.time()
        with open(self.run_dir / "log.jsonl", "a") if main else contextlib.nullcontext() as log_file:
            while self.step < cfg.steps:
                self.apply_lr_schedule()

                # One optimisation step on the next batch.
                indices = self.batch_indices(self.step)
                if cfg.uses_reframing_pairs:
                    images, thetas = self.source.pair_batch(indices)
                    real = to_channels(torch.from_numpy(images), self.model_cfg.channels).to(self.device)
                    stats = self.train_step(real, torch.from_numpy(thetas).to(self.device))
                else:
                    stats = self.train_step(self.load_batch(self.source, indices))
                if not all(math.isfinite(v) for v in stats.values()):
                    raise FloatingPointError(
                        f"non-finite loss at step {self.step}: {stats}; the last good checkpoint is {last}"
                    )
                self.step += 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()})

                # Bookkeeping at the configured intervals.
                record: dict[str, Any] = {}
                if self.step % cfg.log_every == 0:
                    record.update(stats)
                if main and (self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                    self.recalibrate_batch_norm()
                    metrics = self.validate()
                    record.update(metrics)
                    score = selection_score(metrics)
                    if score is not None and score > self.best_score:
                        self.best_score = score
                        save_atomic(self.state(), self.run_dir / "best.pt")
                    if metrics:
                        log.info("step %d: %s", self.step, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                if main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                    self.write_samples()
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save("last.pt")
                if record and main:
                    record.update(step=self.step, seconds=round(time.time() - started, 2))
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
        bar.close()
        if main and not (self.run_dir / "best.pt").exists():
            save_atomic(self.state(), self.run_dir / "best.pt")
        return metrics


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert B x 3 x H x W RGB to `channels` (1: ITU-R BT.601 luma; 3: unchanged)."""
    if channels == images.shape[1]:
        return images
    if channels == 1 and images.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {images.shape[1]}-channel images to {channels} channels")


def selection_score(metrics: dict[str, float]) -> float | None:
    """Return the number best.pt is chosen by, or None.

    With ground truth it is the mask IoU. For unlabelled photos it is the share of usable
    masks plus PSNR / 100, so PSNR only breaks near-ties. For the unconditional model it is
    the share of nearly binary masks.
    """
    if "mask_iou" in metrics:
        return metrics["mask_iou"]
    if "usable_mask_share" in metrics:
        return metrics["usable_mask_share"] + metrics["psnr"] / 100
    return metrics.get("binary_mask_share")


def score_unlabelled(layers: Layers, images: torch.Tensor) -> dict[str, float]:
    """Reconstruction PSNR and the mask-area distribution of photos without ground truth.

    A mask is usable when it covers between 1 % and 95 % of the image (mask > 0.5).
    """
    union = layers.warped_mask[:, :, 0].amax(dim=1).cpu().numpy()
    area = (union > 0.5).mean(axis=(1, 2))
    composite = to_uint8(layers.composite).astype(np.float64)
    return {
        "psnr": float(np.mean(psnr(composite, to_uint8(images)))),
        "empty_mask_share": float((area < 0.01).mean()),
        "full_mask_share": float((area > 0.95).mean()),
        "usable_mask_share": float(((area >= 0.01) & (area <= 0.95)).mean()),
        "mask_area_mean": float(area.mean()),
    }


def mask_binary_loss(mask: torch.Tensor) -> torch.Tensor:
    """Return the mean distance of mask values from the nearer of 0 and 1."""
    return torch.minimum(mask, 1 - mask).float().mean()


def mask_center_offset(mask: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each unwarped mask's centroid from its canvas centre.

    mask: B x K x 1 x H x W in [0, 1]; distances are in normalised coordinates ([-1, 1]).
    Pixels are weighted by the squared mask, so the faint values spread over the whole
    canvas do not pull every centroid to the middle.
    """
    height, width = mask.shape[-2:]
    ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height, device=mask.device)
    xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width, device=mask.device)
    weight = mask[:, :, 0] ** 2
    total = weight.sum(dim=(2, 3)) + 1e-6
    center_x = (weight * xs[None, None, None, :]).sum(dim=(2, 3)) / total
    center_y = (weight * ys[None, None, :, None]).sum(dim=(2, 3)) / total
    return (center_x**2 + center_y**2).mean()


def reframing_inconsistency(layers: Layers, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Measure how far re-framed photos' decompositions are from the originals' moved by the re-framing.

    The batch contains B re-framed photos, then the same B photos unchanged, and thetas
    (B x 2 x 3) map each re-framed photo's normalised coordinates to the original's.
    Returns two mean absolute differences. The first compares the re-framed photo's placed
    masks with the original's placed masks moved by the re-framing. The second compares
    pose matrices: a pose maps output to object coordinates, so the re-framed photo's pose
    should be the original's composed with theta. Gradients reach both halves.
    """
    half = thetas.shape[0]
    framed_masks, plain_masks = layers.warped_mask[:half], layers.warped_mask[half:]
    objects = framed_masks.shape[1]
    moved = warp(plain_masks.flatten(0, 1), thetas.repeat_interleave(objects, dim=0)).view_as(framed_masks)
    loss_mask = (framed_masks - moved).abs().mean()

    expected = layers.pose[half:] @ homogeneous(thetas)[:, None]              # B x K x 2 x 3
    loss_pose = (layers.pose[:half] - expected).abs().mean()
    return loss_mask, loss_pose


def homogeneous(thetas: torch.Tensor) -> torch.Tensor:
    """Extend B x 2 x 3 affine matrices to B x 3 x 3 with the row (0, 0, 1), so they compose by @."""
    bottom = torch.tensor([0.0, 0.0, 1.0], device=thetas.device, dtype=thetas.dtype)
    return torch.cat([thetas, bottom.expand(thetas.shape[0], 1, 3)], dim=1)


def anchor_offset(pose: torch.Tensor, thetas: torch.Tensor, scale: float) -> torch.Tensor:
    """Return the mean absolute distance of the poses from the anchor, the centred square at `scale`.

    pose contains 2B x K x 2 x 3 matrices, the B re-framed photos first. In the unchanged
    photos the anchor is diag(scale, scale) with no shift. In a re-framed photo it is the
    anchor composed with that photo's theta (B x 2 x 3), so the same square moved by the
    re-framing.
    """
    half = thetas.shape[0]
    anchor = torch.tensor([[scale, 0.0, 0.0], [0.0, scale, 0.0]], device=pose.device, dtype=pose.dtype)
    moved = anchor @ homogeneous(thetas)                                       # B x 2 x 3
    framed = (pose[:half] - moved[:, None]).abs().mean()
    plain = (pose[half:] - anchor).abs().mean()
    return (framed + plain) / 2


def cross_composite(layers: Layers) -> torch.Tensor:
    """Paste every image's warped objects onto the background of another image in the batch."""
    batch = layers.background.shape[0]
    order = torch.randperm(batch, device=layers.background.device)
    canvas = layers.background[order]
    for k in range(layers.warped_mask.shape[1]):
        mask = layers.warped_mask[:, k]
        canvas = mask * layers.warped_foreground[:, k] + (1 - mask) * canvas
    return canvas


def score_decomposition(layers: Layers, truth: Truth) -> dict[str, float]:
    """Mean mask IoU, reconstruction PSNR, background gray MAE and object-centre error."""
    union = layers.warped_mask[:, :, 0].amax(dim=1).cpu().numpy()
    composite = to_uint8(layers.composite).astype(np.float64)
    background = to_uint8(layers.background)
    result = {
        "mask_iou": float(mask_iou(union, truth.masks).mean()),
        "psnr": float(np.mean(psnr(composite, truth.images))),
        "background_mae": float(background_gray_mae(background, truth.background_gray).mean()),
    }
    if truth.centers.shape[1] == 1:
        centers = mask_center(union)
        error = np.linalg.norm(centers - truth.centers[:, 0], axis=1)
        result["mask_center_error"] = float(np.nanmean(error)) if np.isfinite(error).any() else float("nan")
    return result


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["pos"], state["has_gauss"], state["cached"]))


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_state(state: list) -> None:
    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))
