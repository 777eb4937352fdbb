"""Tile the layers that `decompose` wrote for one image into a single labelled picture.

Usage: python3 scripts/layers_figure.py LAYER_FOLDER OUT.png [--size 256]

LAYER_FOLDER is one image's folder from `decompose` (with background.png, foreground.png,
mask.png, cutout.png and composite.png) and the input image is read from its pose.json.
The README's picture of the astronaut portrait is made this way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

PANELS = [("input", None), ("background", "background.png"), ("foreground", "foreground.png"),
          ("mask", "mask.png"), ("cut-out", "cutout.png"), ("recomposed", "composite.png")]


def checkerboard(size: int, cell: int = 16) -> Image.Image:
    """Draw a gray checkerboard, the usual backdrop that shows transparency."""
    board = Image.new("RGB", (size, size), (200, 200, 200))
    draw = ImageDraw.Draw(board)
    for y in range(0, size, cell):
        for x in range(0, size, cell):
            if (x // cell + y // cell) % 2:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(150, 150, 150))
    return board


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=256, help="side of each panel in pixels")
    args = parser.parse_args()

    record = json.loads((args.folder / "pose.json").read_text())
    size, label = args.size, 22
    sheet = Image.new("RGB", (size * len(PANELS), size + label), "white")
    draw = ImageDraw.Draw(sheet)
    for column, (title, name) in enumerate(PANELS):
        path = Path(record["source"]) if name is None else args.folder / name
        with Image.open(path) as image:
            panel = image.convert("RGBA").resize((size, size), Image.BILINEAR)
        backdrop = checkerboard(size)
        backdrop.paste(panel, (0, 0), panel)
        sheet.paste(backdrop, (column * size, label))
        draw.text((column * size + 6, 4), title, fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
