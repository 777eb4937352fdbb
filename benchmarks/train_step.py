"""Seconds per training step of LR-GAN beside DCGAN of the same widths, on CPU and, where present, CUDA.

DCGAN is the same preset with one timestep (background only). Each configuration runs a
five warm-up steps, then times the mean of the measured steps on random batches.

    python benchmarks/train_step.py --preset mnist-one --width 0.5 --steps 20
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from lrgan.train.config import TrainConfig, preset_config
from lrgan.train.loop import Trainer


class RandomSource:
    """Random images in [-1, 1]: timing does not depend on the pixels."""

    def __init__(self, size: int, count: int = 4096):
        self.size = size
        self.count = count

    def __len__(self) -> int:
        return self.count

    def batch(self, indices) -> np.ndarray:
        rng = np.random.default_rng(int(indices[0]))
        return (rng.random((len(indices), 3, self.size, self.size), dtype=np.float32) * 2 - 1)


def time_steps(preset: str, timesteps: int, conditional: bool, width: float, batch: int, steps: int,
               device: str, bf16: bool) -> float:
    norm = "group" if conditional else "batch"
    model_cfg = preset_config(preset, timesteps=timesteps, conditional=conditional, width=width, norm=norm,
                              encoder_norm=norm)
    train_cfg = TrainConfig(steps=steps, batch_size=batch, warmup_steps=0, bf16=bf16)
    source = RandomSource(model_cfg.image_size)
    trainer = Trainer("/tmp/lrgan-bench-unused", model_cfg, train_cfg, source, None, device=device)

    def one(step: int) -> None:
        real = torch.from_numpy(source.batch(trainer.batch_indices(step))).to(trainer.device)
        trainer.train_step(real)
        trainer.step += 1

    # Warm-up: the first steps of each shape pay for kernel selection and allocation.
    for step in range(5):
        one(step)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(steps):
        one(step)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist-one")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"))
    print(f"preset {args.preset}, width {args.width}, batch {args.batch}, {args.steps} timed steps")
    lrgan_t = preset_config(args.preset).timesteps
    for device in devices:
        variants = [(False, "fp32")] + ([(True, "bf16")] if device == "cuda" else [])
        for bf16, label in variants:
            for name, timesteps, conditional in (("DCGAN", 1, False), ("LR-GAN", lrgan_t, False),
                                                  ("LR-GAN conditional", lrgan_t, True)):
                seconds = time_steps(args.preset, timesteps, conditional, args.width, args.batch, args.steps,
                                     device, bf16)
                print(f"{device:<5} {label:<5} {name:<20} {seconds * 1000:8.1f} ms/step")


if __name__ == "__main__":
    main()
