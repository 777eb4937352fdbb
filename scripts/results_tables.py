"""Print the tables of docs/RESULTS.md from the metrics.json files scripts/results.sh wrote.

Usage: python scripts/results_tables.py RUNS_DIR/eval
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The LR-GAN paper's figures (Yang et al., ICLR 2017, tables 1 and 3, and the 1-NN
# paragraph of section 5): standard IS, contextual IS, AA, AD, 1-NN.
PAPER = {
    "mnist-one": {"real": (1.83, 9.15, 95.22, None, None), "lr": (2.06, 7.15, 26.61, 8.39, None),
                  "dc": (2.03, 6.42, 26.12, 8.47, None)},
    "cifar10": {"real": (None, None, 83.33, None, None), "lr": (7.17, 6.11, 44.22, 5.57, 62.09),
                "dc": (6.64, 5.69, 37.81, 7.58, 56.05)},
}
RUNS = {
    "mnist-one": [("LR-GAN", "u3", "lr"), ("LR-GAN, mask sharpness 3 (shipped)", "u3s3", None),
                  ("DCGAN", "d3", "dc"), ("no pose", "m1_nopose", None), ("no mask", "m1_nomask", None)],
    "cifar10": [("LR-GAN", "c_lr", "lr"), ("DCGAN", "c_dc", "dc"), ("no pose", "c_nopose", None),
                ("no mask", "c_nomask", None)],
}
ADVERSARIAL = {"mnist-one": {"lr": "adversarial-lr", "dc": "adversarial-dc"}}


def number(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def load(folder: Path, name: str) -> dict | None:
    path = folder / name / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def table(folder: Path, dataset: str) -> str:
    header = ("| model | contextual IS | classifier FID | AA | AD | 1-NN % | nearly binary masks (placed) "
              "| Hungarian L2 to DCGAN | paper: IS / contextual IS / AA / AD / 1-NN |")
    lines = [header, "|" + "---|" * 9]
    real = None
    for label, run, paper_key in RUNS[dataset]:
        metrics = load(folder, run)
        if metrics is None:
            lines.append(f"| {label} | not run | | | | | | | |")
            continue
        real = real or metrics
        adversarial = load(folder, ADVERSARIAL.get(dataset, {}).get(paper_key or "", "")) if paper_key else None
        masks = "-"
        if "nomask" in run:
            masks = "fixed at 1"
        elif "binary_mask_share" in metrics:
            masks = f"{metrics['binary_mask_share']:.2f} ({metrics['binary_warped_mask_share']:.2f})"
        hungarian = "-" if run in ("d3", "c_dc") else number(metrics.get("matched_l2_mean"))
        paper = " / ".join(number(v) for v in PAPER[dataset][paper_key]) if paper_key else "-"
        lines.append(
            f"| {label} | {metrics['contextual_is']:.2f} ± {metrics['contextual_is_std']:.2f} "
            f"| {metrics['classifier_fid']:.0f} "
            f"| {number(adversarial and adversarial['adversarial_accuracy'])} "
            f"| {number(adversarial and adversarial['adversarial_divergence'])} "
            f"| {number(metrics.get('one_nn_accuracy'))} | {masks} | {hungarian} | {paper} |"
        )
    if real is not None:
        paper = " / ".join(number(v) for v in PAPER[dataset]["real"])
        lines.insert(2, f"| real test images | {real['real_contextual_is']:.2f} ± {real['real_contextual_is_std']:.2f} "
                        f"| 0 | {real['real_classifier_accuracy']:.2f} | 0 | - | - | - | {paper} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/results_tables.py RUNS_DIR/eval")
    folder = Path(sys.argv[1])
    for dataset in RUNS:
        print(f"### {dataset}\n")
        print(table(folder, dataset))
        print()


if __name__ == "__main__":
    main()
