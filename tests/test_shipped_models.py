"""The models shipped inside the package: format, size and quality on held-out data."""

from __future__ import annotations

import subprocess
import sys

from lrgan.decompose.model import DEFAULT_MODEL, LayerModel, embedded_models
from lrgan.train.evaluate import evaluate_photos, evaluate_synthetic

MAX_BYTES = {"mnist-one": 10 * 1024 * 1024, "lfw": 16 * 1024 * 1024, "cifar10": 10 * 1024 * 1024}
# Every shipped ONNX file together stays under this size.
MAX_TOTAL_BYTES = 40 * 1024 * 1024


BLOCK_TORCH_SAMPLE = (
    "import sys; sys.modules['torch'] = None; from lrgan.cli.main import lrgan_entry; "
    "sys.argv = ['lrgan', 'sample'] + sys.argv[1:]; lrgan_entry()"
)


def test_embedded_models_are_lrgan_exports():
    models = embedded_models()
    for name in ("mnist-one", "lfw", "cifar10"):
        assert name in models
    assert DEFAULT_MODEL == "lfw"
    for name, path in models.items():
        model = LayerModel(name)
        assert model.info.name == name
        assert path.stat().st_size <= MAX_BYTES.get(name, 16 * 1024 * 1024)
    assert sum(path.stat().st_size for path in models.values()) <= MAX_TOTAL_BYTES


def shipped_samplers() -> list[str]:
    return [name for name in embedded_models() if LayerModel(name).info.kind == "sampler"]


def test_every_shipped_sampler_samples_without_torch(tmp_path):
    """`lrgan sample` on each shipped sampler, with torch made unimportable."""
    names = shipped_samplers()
    assert names, "no sampler is shipped"
    for name in names:
        out = tmp_path / name
        result = subprocess.run(
            [sys.executable, "-c", BLOCK_TORCH_SAMPLE, "--model", name, "--n", "4", "--out", str(out)],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert len(list(out.glob("sample_*/composite.png"))) == 4
        assert (out / "grid.png").is_file()


def test_mnist_one_quality_on_held_out_digits(mnist_dir):
    """The shipped decomposer on MNIST-ONE made from the test digits, with an unseen seed."""
    result = evaluate_synthetic("mnist-one", "mnist-one", mnist_dir, "test", 400, seed=2024, progress=False)
    assert result["mask_iou"] >= 0.80
    assert result["psnr"] >= 22.0
    assert result["background_mae"] <= 10.0


def test_mnist_one_sampler_masks():
    """The shipped sampler (exported with mask sharpness 3): 0.95 of its object masks were
    nearly binary on 5,000 samples, and 0.91 once placed on the image."""
    from lrgan.train.evaluate import evaluate_sampler

    result = evaluate_sampler("mnist-one-sampler", 1000, seed=7, progress=False)
    assert result["binary_mask_share"] > 0.90
    assert result["binary_warped_mask_share"] >= 0.85
    assert 0.03 <= result["mask_area_mean"] <= 0.15


def test_lfw_masks_on_held_out_people(lfw_tree):
    """Re-framed photos of held-out people: almost no empty or full masks."""
    from lrgan.train.lfw import LfwSource

    source = LfwSource(lfw_tree, 64, "test", reframed=True, seed=11)
    result = evaluate_photos("lfw", source, "lfw", 300, seed=11, progress=False)
    assert result["degenerate_share"] < 0.05
    assert 0.08 <= result["mask_area_mean"] <= 0.25


def test_lfw_face_boxes_beat_the_fixed_box(lfw_tree):
    """On re-framed held-out photos the face boxes agree with the Haar cascade far more
    often than a fixed box at the median face position does (measured on these 200
    photos: 0.97 against 0.20; on 1,000 photos with seed 2024: 0.965 against 0.188)."""
    from lrgan.train.face_eval import evaluate_faces

    result = evaluate_faces("lfw", lfw_tree, 200, seed=31, progress=False)
    assert result["model_agrees_iou_0.5"] >= 0.9
    assert result["model_agrees_iou_0.5"] >= result["fixed_box_agrees_iou_0.5"] + 0.5
    assert result["component_box_agrees_iou_0.5"] >= 0.8
    assert result["model_no_face_share"] <= 0.01


def test_cifar10_masks_on_test_images(cifar_tree):
    from lrgan.train.datasets import FolderSource

    result = evaluate_photos("cifar10", FolderSource(cifar_tree / "test", 32), "cifar10", 500, seed=3, progress=False)
    assert result["degenerate_share"] < 0.05
    assert 0.2 <= result["mask_area_mean"] <= 0.4


def test_decompose_default_model_on_held_out_photos(tmp_path, lfw_tree):
    """`decompose` with no --model runs the face model and writes every layer at the photo's size."""
    import json
    import shutil

    from PIL import Image

    from lrgan.train.lfw import lfw_photos

    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in lfw_photos(lfw_tree, "test")[:12]:
        shutil.copy(photo, photos / photo.name)
    out = tmp_path / "layers"
    result = subprocess.run(
        [sys.executable, "-c", "from lrgan.cli.main import decompose_entry; decompose_entry()",
         str(photos), "--out", str(out), "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 12
    for folder in folders:
        for name in ("background.png", "foreground.png", "mask.png", "cutout.png", "composite.png"):
            with Image.open(folder / name) as layer:
                assert layer.size == (250, 250), f"{folder.name}/{name}"
        record = json.loads((folder / "pose.json").read_text())
        assert record["model"] == "lfw"
        assert len(record["objects"]) == 1
