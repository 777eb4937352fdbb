"""The generator scores: hand-checkable cases, then the CLI on real MNIST-ONE and real ONNX samplers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_overrides
from lrgan.train import gan_metrics as gm


def test_inception_score_extremes():
    k = 10
    confident = np.eye(k)[np.arange(1000) % k]                # every class equally often, all certain
    assert gm.inception_score(confident * 0.999 + 0.0001)[0] == pytest.approx(k, rel=0.02)
    one_class = np.tile(np.eye(k)[3], (1000, 1))
    assert gm.inception_score(one_class)[0] == pytest.approx(1.0, abs=1e-6)
    unsure = np.full((1000, k), 1 / k)
    assert gm.inception_score(unsure)[0] == pytest.approx(1.0, abs=1e-6)


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 5))
    b = rng.standard_normal((4000, 5))
    assert gm.frechet_distance(a, b) < 0.05
    # A mean shift of 2 in every one of 5 dimensions adds 5 * 2^2 = 20.
    assert gm.frechet_distance(a, b + 2.0) == pytest.approx(20.0, abs=0.3)
    # Doubling the spread: trace term 5 * (1 + 4 - 2 * 2) = 5.
    assert gm.frechet_distance(a, 2 * b) == pytest.approx(5.0, abs=0.3)


def test_hungarian_match_recovers_a_permutation():
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (40, 1, 8, 8)).astype(np.float32)
    perm = rng.permutation(40)
    b = a[perm] + rng.normal(0, 0.01, a[perm].shape).astype(np.float32)
    match, distance = gm.hungarian_match(a, b)
    assert (perm[match] == np.arange(40)).all()
    assert distance.max() < 0.2
    with pytest.raises(ValueError, match="one size"):
        gm.hungarian_match(a, b[:5])


def test_one_nn_and_kl():
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((3, 16)) * 5
    train_y = np.repeat(np.arange(3), 50)
    test_y = np.repeat(np.arange(3), 20)
    train_x = centres[train_y] + rng.standard_normal((150, 16))
    test_x = centres[test_y] + rng.standard_normal((60, 16))
    assert gm.one_nn_accuracy(train_x, train_y, test_x, test_y) == 100.0
    shuffled = rng.permutation(train_y)
    assert gm.one_nn_accuracy(train_x, shuffled, test_x, test_y) < 70.0
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    assert gm.kl_rows(p, p) == pytest.approx([0, 0], abs=1e-9)
    assert gm.kl_rows(p[:1], np.array([[0.9, 0.1]]))[0] == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))


def test_channel_conversion():
    gray = np.full((2, 1, 4, 4), 0.5, np.float32)
    rgb = gm.to_channels_np(gray, 3)
    assert rgb.shape == (2, 3, 4, 4)
    assert gm.to_channels_np(rgb, 1) == pytest.approx(gray)


# ----- real data, real ONNX samplers, the CLI -----

def lrgan(*args: str) -> subprocess.CompletedProcess:
    code = "from lrgan.cli.main import lrgan_entry; import sys; sys.argv = ['lrgan'] + sys.argv[1:]; lrgan_entry()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def samplers(tmp_path_factory):
    """A tiny gray mnist-one LR-GAN sampler with its checkpoint, and a tiny DCGAN sampler."""
    import torch

    from lrgan.export.onnx_export import export_generator
    from lrgan.train.checkpoint import save_atomic
    from lrgan.train.config import preset_config
    from lrgan.train.networks import Discriminator, Generator

    folder = tmp_path_factory.mktemp("samplers")
    torch.manual_seed(0)
    cfg = preset_config("mnist-one", channels=1, **tiny_overrides(norm="batch"))
    generator, disc = Generator(cfg), Discriminator(cfg)
    save_atomic({"model_config": cfg.to_dict(), "generator": generator.state_dict(),
                 "discriminator": disc.state_dict()}, folder / "run.pt")
    lr = export_generator(generator, cfg, folder / "lr.onnx", "lr")
    dc_cfg = preset_config("mnist-one", channels=1, timesteps=1, **tiny_overrides(norm="batch"))
    dc = export_generator(Generator(dc_cfg), dc_cfg, folder / "dc.onnx", "dc")
    return {"lr": lr, "dc": dc, "checkpoint": folder / "run.pt"}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, mnist_dir) -> Path:
    path = tmp_path_factory.mktemp("classifier") / "clf.pt"
    result = lrgan("train-classifier", "--out", str(path), "--mnist", str(mnist_dir), "--channels", "1",
                   "--steps", "300", "--count", "4000", "--threads", "2", "-q")
    assert result.returncode == 0, result.stderr
    accuracy = float(next(line for line in result.stdout.splitlines() if line.startswith("test_accuracy")).split()[1])
    # 300 steps on real MNIST-ONE digits already separate the classes well above chance (10 %).
    assert accuracy > 60, result.stdout
    return path


def test_classifier_file_round_trip(classifier):
    model, cfg, classes, info = gm.load_classifier(classifier)
    assert classes == [str(d) for d in range(10)]
    assert cfg.channels == 1
    assert info["steps"] == 300
    with pytest.raises(ValueError, match="not a classifier"):
        bad = classifier.parent / "other.pt"
        import torch

        torch.save({"kind": "something else"}, bad)
        gm.load_classifier(bad)


def test_evaluate_sampler_all_scores(tmp_path, samplers, classifier, mnist_dir):
    out = tmp_path / "eval"
    result = lrgan("evaluate", "--model", str(samplers["lr"]), "-n", "200", "--classifier", str(classifier),
                   "--data", "mnist-one", "--mnist", str(mnist_dir), "--real-count", "300",
                   "--discriminator", str(samplers["checkpoint"]), "--compare", str(samplers["dc"]),
                   "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    # An untrained sampler scores far below real digits on the real-data classifier.
    assert 1.0 <= metrics["contextual_is"] < metrics["real_contextual_is"]
    assert metrics["real_classifier_accuracy"] > 60
    assert metrics["classifier_fid"] > 0
    assert 0 <= metrics["one_nn_accuracy"] <= 100
    assert metrics["matched_l2_mean"] > 0
    assert sum(metrics["class_histogram"]) == 200
    for name in ("samples.png", "pose_histograms.png", "nearest_real.png", "hungarian_pairs.png"):
        assert (out / name).stat().st_size > 1000, name


def test_evaluate_dcgan_no_mask_scores(tmp_path, samplers, classifier):
    result = lrgan("evaluate", "--model", str(samplers["dc"]), "-n", "50", "--classifier", str(classifier), "-q")
    assert result.returncode == 0, result.stderr
    assert "contextual_is:" in result.stdout
    assert "binary_mask_share" not in result.stdout


def test_inception_score_local_weights(tmp_path, samplers, mnist_dir):
    """No Inception weights can be downloaded here, so a randomly initialised torchvision
    Inception v3 is saved to disk and read back the way a user's weights file would be."""
    import torch
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    weights = tmp_path / "inception.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=True).state_dict(), weights)
    result = lrgan("evaluate", "--model", str(samplers["lr"]), "-n", "20", "--inception", str(weights),
                   "--data", "mnist-one", "--mnist", str(mnist_dir), "--real-count", "20", "-q")
    assert result.returncode == 0, result.stderr
    values = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert 1.0 <= float(values["inception_score"]) <= 1000
    assert float(values["inception_fid"]) > 0

    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not torch")
    result = lrgan("evaluate", "--model", str(samplers["lr"]), "-n", "5", "--inception", str(broken), "-q")
    assert result.returncode == 2
    assert "broken.pth" in result.stderr


def test_evaluate_adversarial(tmp_path, samplers, classifier, mnist_dir):
    args = [item for k in range(10) for item in ("--generator", f"{k}={samplers['lr']}")]
    result = lrgan("evaluate-adversarial", *args, "--classifier", str(classifier), "--mnist", str(mnist_dir),
                   "--per-class", "20", "--steps", "20", "--real-count", "300", "--out", str(tmp_path), "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["real_accuracy"] > 60
    # Ten copies of one untrained generator carry no class information.
    assert metrics["adversarial_accuracy"] < 40
    assert metrics["adversarial_divergence"] > 0


@pytest.mark.parametrize("generator, message", [
    (["3"], "CLASS=SAMPLER"),
    (["0=nowhere.onnx"], "nowhere.onnx"),
])
def test_evaluate_adversarial_bad_generators(tmp_path, classifier, generator, message):
    args = [item for g in generator for item in ("--generator", g)]
    result = lrgan("evaluate-adversarial", *args, "--classifier", str(classifier))
    assert result.returncode == 2
    assert message in result.stderr


def test_evaluate_adversarial_needs_every_class(samplers, classifier, mnist_dir):
    result = lrgan("evaluate-adversarial", "--generator", f"0={samplers['lr']}", "--classifier", str(classifier),
                   "--mnist", str(mnist_dir))
    assert result.returncode == 2
    assert "one per class" in result.stderr


def test_adversarial_class_out_of_range(samplers, classifier, mnist_dir):
    args = [item for k in range(10) for item in ("--generator", f"{k}={samplers['lr']}")]
    result = lrgan("evaluate-adversarial", *args, "--generator", f"12={samplers['lr']}",
                   "--classifier", str(classifier), "--mnist", str(mnist_dir))
    assert result.returncode == 2
    assert "12 out of range" in result.stderr


def test_evaluate_never_replaces_user_files(tmp_path, samplers, classifier, mnist_dir):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "metrics.json").write_text("my numbers")
    note = tmp_path / "note.txt"
    note.write_text("my note")
    for out in (own, note):
        result = lrgan("evaluate", "--model", str(samplers["lr"]), "-n", "10", "--out", str(out))
        assert result.returncode == 2
        assert str(out) in result.stderr
    result = lrgan("train-classifier", "--out", str(note), "--mnist", str(mnist_dir), "--steps", "1", "--count", "100")
    assert result.returncode == 2
    assert "not a classifier" in result.stderr
    assert (own / "metrics.json").read_text() == "my numbers"
    assert note.read_text() == "my note"
    # An earlier evaluation's folder may be written again.
    done = tmp_path / "done"
    for _ in range(2):
        assert lrgan("evaluate", "--model", str(samplers["lr"]), "-n", "10", "--out", str(done), "-q").returncode == 0


@pytest.mark.parametrize("option", ["--classifier", "--discriminator", "--inception"])
def test_evaluate_folder_given_as_file(tmp_path, samplers, mnist_dir, option):
    result = lrgan("evaluate", "--model", str(samplers["lr"]), "-n", "10", option, str(tmp_path),
                   "--data", "mnist-one", "--mnist", str(mnist_dir), "--real-count", "10")
    assert result.returncode == 2
    assert "is a folder" in result.stderr
