"""The models shipped inside the package: format, size and quality on held-out data."""

from __future__ import annotations

import subprocess
import sys

from lrgan.decompose.model import LayerModel, embedded_models
from lrgan.train.evaluate import evaluate_synthetic

MAX_BYTES = {"mnist-one": 10 * 1024 * 1024}
# Every shipped ONNX file together stays under this size.
MAX_TOTAL_BYTES = 40 * 1024 * 1024


BLOCK_TORCH_SAMPLE = (
    "import sys; sys.modules['torch'] = None; from lrgan.cli.main import lrgan_entry; "
    "sys.argv = ['lrgan', 'sample'] + sys.argv[1:]; lrgan_entry()"
)


def test_embedded_models_are_lrgan_exports():
    models = embedded_models()
    assert "mnist-one" in models
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
