"""The models shipped inside the package: format, size and quality on held-out data."""

from __future__ import annotations

from lrgan.decompose.model import LayerModel, embedded_models
from lrgan.train.evaluate import evaluate_synthetic

MAX_BYTES = {"mnist-one": 10 * 1024 * 1024}


def test_embedded_models_are_lrgan_exports():
    models = embedded_models()
    assert "mnist-one" in models
    for name, path in models.items():
        model = LayerModel(name)
        assert model.info.name == name
        assert path.stat().st_size <= MAX_BYTES.get(name, 16 * 1024 * 1024)


def test_mnist_one_quality_on_held_out_digits(mnist_dir):
    """The shipped decomposer on MNIST-ONE made from the test digits, with an unseen seed."""
    result = evaluate_synthetic("mnist-one", "mnist-one", mnist_dir, "test", 400, seed=2024, progress=False)
    assert result["mask_iou"] >= 0.80
    assert result["psnr"] >= 22.0
    assert result["background_mae"] <= 10.0
