"""Diagnostics behind the face model's anchor prior (docs/MODELS.md, docs/FACES.md).

Usage: python3 scripts/reframing_diagnostics.py DATA MODEL.onnx [--photos 200] [--scale 2.0]

DATA is a folder with the extracted lfw-deepfunneled/ tree. The script prints:
- the median Haar cascade box on 150 unchanged training photos, the number the anchor's
  size (the centred square of side 1 / scale of the frame) was chosen next to;
- on re-framed held-out photos, how the model's object canvas compares with that centred
  square moved by the known re-framing: IoU, the median size ratio, and the correlation
  of the log size ratio with the zoom (negative when the size regresses to the mean).
"""

from __future__ import annotations

import argparse

import numpy as np

from lrgan.decompose.faces import FaceBox
from lrgan.decompose.layers import to_model_input
from lrgan.decompose.model import LayerModel
from lrgan.train.face_eval import haar_boxes, haar_detector
from lrgan.train.lfw import FRAME, lfw_photos, load_photo, reframe


def canvas_box(pose: np.ndarray, size: int) -> FaceBox:
    """Box of the object canvas placed by a 2 x 3 output -> source pose (no shear assumed)."""
    scale_x, shift_x, scale_y, shift_y = pose[0, 0], pose[0, 2], pose[1, 1], pose[1, 2]
    # Source x in [-1, 1] comes from output u with scale_x * u + shift_x in [-1, 1].
    x0, x1 = (-1 - shift_x) / scale_x, (1 - shift_x) / scale_x
    y0, y1 = (-1 - shift_y) / scale_y, (1 - shift_y) / scale_y
    to_pixels = lambda u: int(round((u + 1) * size / 2))  # noqa: E731
    return FaceBox(True, to_pixels(x0), to_pixels(y0), to_pixels(x1), to_pixels(y1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("model")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--scale", type=float, default=2.0, help="the anchor's scale")
    args = parser.parse_args()

    detector = haar_detector()
    train = lfw_photos(args.data, "train")
    chosen = np.random.default_rng(0).choice(len(train), 150, replace=False)
    single = [b[0] for b in (haar_boxes(detector, load_photo(train[i])) for i in chosen) if len(b) == 1]
    sides = np.array([b.x1 - b.x0 for b in single])
    print(f"median Haar box side on {len(single)} training photos: {np.median(sides):.0f} px of {FRAME} "
          f"({np.median(sides) / FRAME:.2f} of the side)")

    model = LayerModel(args.model)
    test = lfw_photos(args.data, "test")
    picked = np.random.default_rng(5).choice(len(test), args.photos, replace=False)
    ious, ratios, zooms = [], [], []
    for i in picked:
        image, how = reframe(load_photo(test[i]), np.random.default_rng([99, int(i)]))
        half = how.zoom * FRAME / (2 * args.scale)
        true = FaceBox(True, int(how.center_x - half), int(how.center_y - half),
                       int(how.center_x + half), int(how.center_y + half))
        outputs = model.run(to_model_input([image], model.info.image_size, model.info.channels))
        box = canvas_box(outputs["pose"][0, 0], FRAME)
        ious.append(box.iou(true))
        ratios.append((box.x1 - box.x0) / (true.x1 - true.x0))
        zooms.append(how.zoom)
    ious, ratios = np.array(ious), np.array(ratios)
    print(f"canvas against the moved centre square on {len(ious)} re-framed held-out photos: "
          f"IoU >= 0.5 on {np.mean(ious >= 0.5):.1%}, mean IoU {ious.mean():.3f}")
    print(f"median size ratio {np.median(ratios):.2f}; correlation of log ratio with zoom "
          f"{np.corrcoef(np.log(ratios), zooms)[0, 1]:.2f}")


if __name__ == "__main__":
    main()
