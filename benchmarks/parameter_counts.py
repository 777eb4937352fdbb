"""Print parameter counts (generator + discriminator) of every preset beside those of Yang et al., ICLR 2017.

    python benchmarks/parameter_counts.py
"""

from __future__ import annotations

from lrgan.train.config import PAPER_PARAMETERS, PRESETS, preset_config
from lrgan.train.networks import ConditionalGenerator, Discriminator, Generator, count_parameters


def millions(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}M"


def main() -> None:
    print("| preset | size | T | LR-GAN here | LR-GAN paper | DCGAN here | DCGAN paper | conditional, width 0.5 (generator + encoder) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in PRESETS:
        cfg = preset_config(name)
        dcgan = preset_config(name, timesteps=1)
        lrgan_count = count_parameters(Generator(cfg)) + count_parameters(Discriminator(cfg))
        dcgan_count = count_parameters(Generator(dcgan)) + count_parameters(Discriminator(dcgan))
        shipped = preset_config(name, conditional=True, width=0.5, norm="group", encoder_norm="group")
        conditional = count_parameters(ConditionalGenerator(shipped))
        paper_lrgan, paper_dcgan = PAPER_PARAMETERS[name]
        print(f"| {name} | {cfg.image_size} | {cfg.timesteps} | {millions(lrgan_count)} | {millions(paper_lrgan)} | "
              f"{millions(dcgan_count)} | {millions(paper_dcgan)} | {millions(conditional)} |")


if __name__ == "__main__":
    main()
