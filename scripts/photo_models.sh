#!/usr/bin/env bash
# Train, export and score the photo decomposers `lfw` and `cifar10` (docs/MODELS.md, docs/FACES.md).
#
# Usage: scripts/photo_models.sh RUNS_DIR DATA_DIR [STAGE]
#
# RUNS_DIR is where runs, exports and scores go, outside the repository. DATA_DIR contains the
# extracted lfw-deepfunneled/ and cifar10-jpeg/ trees (tar -xzf each archive into it).
# STAGE is train, evaluate or all (the default). Each training job uses one CPU thread;
# behind docs/MODELS.md the two ran side by side on a 2-core machine. Run it with the
# environment that has lrgan installed active, so that lrgan, decompose and python3 are its.
set -euo pipefail

runs=$(realpath -m "${1:?RUNS_DIR missing}")
data=$(realpath "${2:?DATA_DIR missing}")
stage=${3:-all}
mkdir -p "$runs/eval"
cd "$runs"

if [[ $stage == train || $stage == all ]]; then
    # Both runs were made in two phases. The learning rates are constant before step 3,000,
    # so stopping at 2,000 and resuming gives the same schedule as one run.
    (
        # Faces: each photo is decomposed as it is and re-framed, and the pose found in the
        # re-framed photo must be the first pose moved by the re-framing. From step 2,000
        # the anchor prior also fixes the canvas to the centred square in aligned photos.
        lrgan train --preset lfw --mode conditional --data lfw --lfw "$data" --out lfw10 \
            --width 0.5 --batch-size 16 --steps 2000 --decay-from 3000 --warmup 1000 --adv-weight 0.1 \
            --d-norm spectral --gan-loss hinge --equivariance-weight 10 --scale-max 4 --scale-init 2 \
            --upsample resize --bg-code 16 --every 250 --threads 1 --quiet
        lrgan train --out lfw10 --resume --anchor-weight 10 --steps 4000 --threads 1 --quiet
    ) &
    (
        # Objects: the background reads 16 entries of the image's code, so the object layer
        # has to draw the object.
        lrgan train --preset cifar10 --mode conditional --data "$data/cifar10-jpeg/train" \
            --valid "$data/cifar10-jpeg/test" --out c10e --width 0.5 --steps 2000 --decay-from 4500 \
            --warmup 500 --adv-weight 0.3 --d-norm spectral --gan-loss hinge --upsample resize --bg-code 16 \
            --every 500 --threads 1 --quiet
        lrgan train --out c10e --resume --steps 4000 --decay-from 3000 --threads 1 --quiet
    ) &
    wait
fi

if [[ $stage == evaluate || $stage == all ]]; then
    lrgan export lfw10/last.pt --out lfw.onnx --name lfw
    lrgan export c10e/last.pt --out cifar10.onnx --name cifar10
    # One thread, as for the times in docs/FACES.md.
    LRGAN_THREADS=1 lrgan evaluate-faces --model lfw.onnx --lfw "$data" -n 1000 --seed 2024 --out eval/faces
    lrgan evaluate --model lfw.onnx --data lfw --lfw "$data" -n 1000 --seed 7 --out eval/lfw
    lrgan evaluate --model cifar10.onnx --data "$data/cifar10-jpeg/test" -n 2000 --seed 7 --out eval/cifar10
    # decompose on the first 200 held-out photos, every layer of each
    python3 - "$data" "$runs/heldout200" <<'PY'
import shutil, sys
from pathlib import Path
from lrgan.train.lfw import lfw_photos
target = Path(sys.argv[2]); target.mkdir(parents=True, exist_ok=True)
for photo in lfw_photos(sys.argv[1], "test")[:200]:
    shutil.copy(photo, target / photo.name)
PY
    decompose "$runs/heldout200" --out eval/heldout200 --model lfw.onnx --report eval/heldout200.json
fi
echo "runs, exports and scores are in $runs"
