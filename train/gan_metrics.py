"""Scores for unconditional generators: those of the LR-GAN paper (Yang et al., ICLR 2017), FID and two pictures.

- A classifier built from the discriminator trunk and two fully connected layers, trained
  on labelled real images. It gives the contextual Inception Score and, from its hidden
  layer, the features of a Frechet distance.
- Adversarial Accuracy and Adversarial Divergence: a classifier of the same shape trained
  on samples of one generator per class, scored on real images against the real classifier.
- 1-nearest-neighbour classification of real test images with a trained discriminator's
  last convolution as features, cosine similarity.
- Nearest real training images of samples, and Hungarian matching of two sample sets by
  L2 distance in pixels, both drawn as pictures.
- The standard Inception Score and FID, from an Inception v3 weights file on disk.

Images are N x C x H x W float32 in [-1, 1] throughout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .checkpoint import load_checkpoint, load_torch_file, save_atomic
from .config import ModelConfig
from .data import SyntheticMnist, load_mnist
from .datasets import IMAGE_SUFFIXES, load_square
from .networks import Discriminator

log = logging.getLogger(__name__)

CLASSIFIER_KIND = "lrgan-classifier"


# ----- labelled real images -----

@dataclass
class LabelledImages:
    images: np.ndarray   # N x C x H x W float32 in [-1, 1]
    labels: np.ndarray   # N int64
    classes: list[str]


def to_channels_np(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert N x C x H x W between gray (ITU-R BT.601 luma) and RGB (gray repeated)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 3 and channels == 1:
        weights = np.array([0.299, 0.587, 0.114], np.float32).reshape(1, 3, 1, 1)
        return (images * weights).sum(axis=1, keepdims=True).astype(np.float32)
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    raise ValueError(f"cannot convert {have}-channel images to {channels} channels")


def load_labelled(data: str, split: str, image_size: int, channels: int, count: int, seed: int = 0,
                  mnist_dir: str | Path | None = None, progress: bool = True) -> LabelledImages:
    """Labelled real images of one split.

    `data` is "mnist-one" or a folder with train/ and test/ subfolders in ImageFolder layout
    (one subfolder per class), such as the CIFAR-10 JPEG tree. For mnist-one the digit is
    the label. Its training split uses the training digits, as training does, and its test
    split the held-out test digits.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    if data == "mnist-one":
        if mnist_dir is None:
            raise ValueError("--mnist DIR is required for mnist-one: the folder with the MNIST IDX files")
        digits, labels = load_mnist(mnist_dir, split)
        synth = SyntheticMnist("mnist-one", digits, labels, seed=seed)
        if synth.spec.size != image_size:
            raise ValueError(f"mnist-one images are {synth.spec.size}px, the model works at {image_size}px")
        count = min(count, len(synth))
        images = np.concatenate([synth.batch(range(s, min(count, s + 1000))) for s in range(0, count, 1000)])
        targets = np.array([synth[i].labels[0] for i in range(count)], np.int64)
        return LabelledImages(to_channels_np(images, channels), targets, [str(d) for d in range(10)])
    if not Path(data).is_dir():
        raise FileNotFoundError(
            f"--data {data} not found; give mnist-one or a folder with train/ and test/ class folders"
        )
    root = Path(data) / split
    if not root.is_dir():
        raise ValueError(
            f"{data} has no {split}/ folder; give mnist-one or a folder with train/ and test/ "
            "subfolders holding one folder of images per class"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{root} has no class subfolders")
    items = [(path, k) for k, name in enumerate(classes) for path in sorted((root / name).iterdir())
             if path.suffix.lower() in IMAGE_SUFFIXES]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))[:count]
    images = np.stack([load_square(items[i][0], image_size)
                       for i in tqdm(order, disable=None if progress else True, desc=f"read {split}", unit="img")])
    images = images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
    targets = np.array([items[i][1] for i in order], np.int64)
    return LabelledImages(to_channels_np(images, channels), targets, classes)


# ----- the evaluation classifier -----

class Classifier(nn.Module):
    """Discriminator trunk with its top layer replaced by two fully connected layers."""

    def __init__(self, cfg: ModelConfig, n_classes: int, hidden: int = 512):
        super().__init__()
        self.trunk = Discriminator(cfg).trunk
        side = 4  # every discriminator ends at 4 x 4
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(cfg.scaled(cfg.d_channels)[-1] * side * side, hidden),
                                    nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.out = nn.Linear(hidden, n_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.trunk(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.embed(images)))


def train_classifier(data: LabelledImages, cfg: ModelConfig, steps: int, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0, progress: bool = True) -> Classifier:
    """Train a Classifier on labelled images with Adam and cross-entropy."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Classifier(cfg, len(data.classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    images = torch.from_numpy(data.images)
    labels = torch.from_numpy(data.labels)
    model.train()
    bar = tqdm(range(steps), disable=None if progress else True, desc="classifier", unit="step")
    for _ in bar:
        index = torch.from_numpy(rng.integers(0, len(images), batch_size))
        loss = nn.functional.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    return model


@torch.no_grad()
def classify(model: Classifier, images: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Return (class probabilities N x K, hidden features N x F)."""
    model.eval()
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        hidden = model.embed(torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])))
        probs.append(torch.softmax(model.out(hidden), dim=1).numpy())
        feats.append(hidden.numpy())
    return np.concatenate(probs).astype(np.float64), np.concatenate(feats).astype(np.float64)


def save_classifier(path: str | Path, model: Classifier, cfg: ModelConfig, classes: list[str], info: dict) -> None:
    save_atomic({"kind": CLASSIFIER_KIND, "model_config": cfg.to_dict(), "classes": list(classes),
                 "state": model.state_dict(), "info": info}, path)


def load_classifier(path: str | Path) -> tuple[Classifier, ModelConfig, list[str], dict]:
    expected = "the .pt file that `lrgan train-classifier` wrote"
    state = load_torch_file(path, "classifier", expected,
                            f"; train one with `lrgan train-classifier --out {path}`")
    if not isinstance(state, dict) or state.get("kind") != CLASSIFIER_KIND:
        raise ValueError(f"{path}: not a classifier written by `lrgan train-classifier`")
    cfg = ModelConfig.from_dict(state["model_config"])
    model = Classifier(cfg, len(state["classes"]))
    model.load_state_dict(state["state"])
    model.eval()
    return model, cfg, list(state["classes"]), dict(state.get("info", {}))


# ----- scores -----

def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and standard deviation over `splits` equal parts."""
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows are samples).

    tr(sqrt(Ca Cb)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric matrix sqrt(Ca) Cb sqrt(Ca), which stays real and stable when a covariance
    is singular (fewer samples than features).
    """
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p_i || q_i) for each row."""
    return (p * (np.log(p + 1e-12) - np.log(q + 1e-12))).sum(axis=1)


def adversarial_scores(generated_model: Classifier, real_model: Classifier, real: LabelledImages) -> dict[str, float]:
    """Adversarial Accuracy (of both classifiers) and Adversarial Divergence on real images.

    The divergence is the mean over real images of KL(P_g(y|x) || P(y|x)), P_g from the
    classifier trained on generated samples and P from the one trained on real images.
    """
    p_gen, _ = classify(generated_model, real.images)
    p_real, _ = classify(real_model, real.images)
    return {
        "adversarial_accuracy": float((p_gen.argmax(1) == real.labels).mean() * 100),
        "real_accuracy": float((p_real.argmax(1) == real.labels).mean() * 100),
        "adversarial_divergence": float(kl_rows(p_gen, p_real).mean()),
    }


def cosine_neighbours(queries: np.ndarray, pool: np.ndarray, chunk: int = 1000) -> np.ndarray:
    """Index into `pool` of each query's most cosine-similar row."""
    def unit(x):
        x = x.reshape(len(x), -1).astype(np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)

    pool_u = unit(pool)
    queries_u = unit(queries)
    return np.concatenate([(queries_u[s:s + chunk] @ pool_u.T).argmax(axis=1) for s in range(0, len(queries_u), chunk)])


def one_nn_accuracy(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray,
                    test_labels: np.ndarray) -> float:
    """Percent of test rows whose cosine nearest training row has the same label."""
    return float((train_labels[cosine_neighbours(test_feats, train_feats)] == test_labels).mean() * 100)


@torch.no_grad()
def discriminator_features(checkpoint: str | Path, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Last convolution of a training run's discriminator, flattened, for 1-NN."""
    state = load_checkpoint(checkpoint)
    if "discriminator" not in state:
        raise ValueError(f"{checkpoint}: has no discriminator weights")
    cfg = ModelConfig.from_dict(state["model_config"])
    disc = Discriminator(cfg)
    disc.load_state_dict(state["discriminator"])
    disc.eval()
    images = to_channels_np(images, cfg.channels)
    feats = [disc.features(torch.from_numpy(np.ascontiguousarray(images[s:s + batch_size]))).flatten(1).numpy()
             for s in range(0, len(images), batch_size)]
    return np.concatenate(feats)


def hungarian_match(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair each image of `a` with one of `b` so the summed L2 pixel distance is least.

    Returns (index into b for each row of a, the L2 distance of each pair).
    """
    from scipy.optimize import linear_sum_assignment

    if len(a) != len(b):
        raise ValueError(f"Hungarian matching needs two sets of one size, got {len(a)} and {len(b)}")
    flat_a = a.reshape(len(a), -1).astype(np.float64)
    flat_b = b.reshape(len(b), -1).astype(np.float64)
    cost = np.sqrt(np.maximum(
        (flat_a ** 2).sum(1)[:, None] + (flat_b ** 2).sum(1)[None, :] - 2 * flat_a @ flat_b.T, 0))
    rows, cols = linear_sum_assignment(cost)
    match = np.empty(len(a), np.int64)
    match[rows] = cols
    return match, cost[np.arange(len(a)), match]


# ----- the standard Inception Score and FID from a local weights file -----

class LocalInception:
    """torchvision's Inception v3 with weights read from a file on disk (no download).

    The file is a state dict of `torchvision.models.inception_v3` (with or without the
    auxiliary head), for example torchvision's inception_v3_google-0cc3c7bd.pth. Images go in
    scaled to [-1, 1] and resized to 299 x 299, the input the original network was trained on.
    """

    def __init__(self, path: str | Path):
        from torchvision.models import inception_v3

        state = load_torch_file(path, "Inception weights file", "a state dict of torchvision's inception_v3")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict) or "fc.weight" not in state:
            raise ValueError(f"{path}: not an Inception v3 state dict (no fc.weight)")
        aux = any(key.startswith("AuxLogits.") for key in state)
        self.net = inception_v3(weights=None, aux_logits=aux, init_weights=False, transform_input=False,
                                num_classes=state["fc.weight"].shape[0])
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{path}: does not fit torchvision's Inception v3 ({exc})") from exc
        self.net.eval()
        self._pool: list[torch.Tensor] = []
        self.net.avgpool.register_forward_hook(lambda _m, _i, output: self._pool.append(output.flatten(1)))

    @torch.no_grad()
    def run(self, images: np.ndarray, batch_size: int = 50, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Return (softmax N x classes, pool features N x 2048)."""
        probs, feats = [], []
        for start in tqdm(range(0, len(images), batch_size), disable=None if progress else True,
                          desc="inception", unit="batch"):
            batch = torch.from_numpy(to_channels_np(np.ascontiguousarray(images[start:start + batch_size]), 3))
            batch = nn.functional.interpolate(batch, size=(299, 299), mode="bilinear", align_corners=False)
            self._pool.clear()
            logits = self.net(batch)
            probs.append(torch.softmax(logits, dim=1).numpy())
            feats.append(self._pool[-1].numpy())
        return np.concatenate(probs).astype(np.float64), np.concatenate(feats).astype(np.float64)


# ----- pictures -----

def to_tiles(images: np.ndarray) -> np.ndarray:
    """N x C x H x W in [-1, 1] -> N x H x W x 3 uint8."""
    tiles = np.rint(np.clip((to_channels_np(images, 3).transpose(0, 2, 3, 1) + 1) * 127.5, 0, 255))
    return tiles.astype(np.uint8)


def pair_grid(left: np.ndarray, right: np.ndarray, columns: int = 4, zoom: int = 3, gap: int = 4) -> np.ndarray:
    """Pairs side by side (left | right), `columns` pairs per row, on white."""
    a, b = to_tiles(left), to_tiles(right)
    n, h, w, _ = a.shape
    rows = -(-n // columns)
    cell_w = 2 * w + gap // 2
    canvas = np.full((rows * (h + gap), columns * (cell_w + 2 * gap), 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = r * (h + gap), c * (cell_w + 2 * gap)
        canvas[y:y + h, x:x + w] = a[i]
        canvas[y:y + h, x + w + gap // 2:x + 2 * w + gap // 2] = b[i]
    return canvas.repeat(zoom, axis=0).repeat(zoom, axis=1)


def samples_from(model, count: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run an exported sampler (a LayerModel): (all outputs, composites N x C x H x W in [-1, 1])."""
    from ..decompose.sampling import make_noise, run_sampler

    model.require("sampler")
    outputs = run_sampler(model, make_noise(model, count, seed), batch_size=250)
    return outputs, outputs["composite"].astype(np.float32)
