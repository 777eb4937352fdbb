#!/usr/bin/env bash
# Reproduce docs/RESULTS.md: train every generator, export it, and score it.
#
# Usage: scripts/results.sh RUNS_DIR MNIST_DIR CIFAR_TREE [STAGE]
#
# RUNS_DIR is where runs, exports and scores go, outside the repository. MNIST_DIR is the
# folder with the four MNIST IDX files. CIFAR_TREE is the extracted CIFAR-10 JPEG tree with
# train/ and test/ class folders, or - to leave CIFAR-10 out. STAGE is train, evaluate or
# all (the default).
#
# The script runs one job after another, each on one CPU thread. The run times quoted in
# RESULTS.md add up to about three and a half hours on the 2-core machine. Behind
# RESULTS.md the same commands ran as two queues in parallel, one per core.
set -euo pipefail

runs=$(realpath -m "${1:?RUNS_DIR missing}")
mnist=$(realpath "${2:?MNIST_DIR missing}")
cifar=${3:?CIFAR_TREE missing, give - to leave CIFAR-10 out}
[[ $cifar == - ]] || cifar=$(realpath "$cifar")
stage=${4:-all}
mkdir -p "$runs/cls" "$runs/eval"
cd "$runs"

m1=(--preset mnist-one --mnist "$mnist" --channels 1 --width 0.5 --minibatch-std --threads 1 --quiet)
c10=(--preset cifar10 --data "$cifar/train" --width 0.5 --minibatch-std --threads 1 --quiet)

if [[ $stage == train || $stage == all ]]; then
    # Four models per dataset with the same steps, data and discriminator.
    lrgan train "${m1[@]}" --out u3 --steps 4000 --every 500
    lrgan train "${m1[@]}" --out d3 --timesteps 1 --steps 4000 --every 500
    lrgan train "${m1[@]}" --out m1_nopose --no-pose --steps 4000 --every 500
    lrgan train "${m1[@]}" --out m1_nomask --no-mask --steps 4000 --every 500
    if [[ $cifar != - ]]; then
        lrgan train "${c10[@]}" --out c_lr --steps 2500 --every 500
        lrgan train "${c10[@]}" --out c_dc --timesteps 1 --steps 2500 --every 500
        lrgan train "${c10[@]}" --out c_nopose --no-pose --steps 2500 --every 500
        lrgan train "${c10[@]}" --out c_nomask --no-mask --steps 2500 --every 500
    fi
    # One short run per digit class for Adversarial Accuracy and Divergence.
    for d in 0 1 2 3 4 5 6 7 8 9; do
        lrgan train "${m1[@]}" --out "cls/lr_$d" --digit "$d" --steps 600 --every 600
        lrgan train "${m1[@]}" --out "cls/dc_$d" --digit "$d" --timesteps 1 --steps 600 --every 600
    done
    # The evaluation classifiers: discriminator trunk plus two fully connected layers.
    lrgan train-classifier --out eval/clf-m1.pt --mnist "$mnist" --channels 1 --width 0.5 \
        --steps 2000 --count 20000 --threads 1 -q
    if [[ $cifar != - ]]; then
        lrgan train-classifier --out eval/clf-c10.pt --data "$cifar" --preset cifar10 --width 0.5 \
            --steps 4000 --count 50000 --threads 1 -q
    fi
fi

if [[ $stage == evaluate || $stage == all ]]; then
    exports=(u3 d3 m1_nopose m1_nomask cls/lr_{0..9} cls/dc_{0..9})
    [[ $cifar == - ]] || exports+=(c_lr c_dc c_nopose c_nomask)
    for run in "${exports[@]}"; do
        lrgan export "$run/last.pt" --out "$run.onnx" -q
    done
    # The shipped sampler: the LR-GAN run with its mask logits multiplied by 3.
    lrgan export u3/last.pt --out u3s3.onnx --mask-sharpness 3 -q
    for run in u3 u3s3 d3 m1_nopose m1_nomask; do
        lrgan evaluate --model "$run.onnx" -n 5000 --seed 1 --classifier eval/clf-m1.pt \
            --data mnist-one --mnist "$mnist" --discriminator "${run%s3}/last.pt" --compare d3.onnx \
            --out "eval/$run" -q
    done
    if [[ $cifar != - ]]; then
        for run in c_lr c_dc c_nopose c_nomask; do
            lrgan evaluate --model "$run.onnx" -n 5000 --seed 1 --classifier eval/clf-c10.pt \
                --data "$cifar" --discriminator "$run/last.pt" --compare c_dc.onnx --out "eval/$run" -q
        done
    fi
    for kind in lr dc; do
        generators=()
        for d in 0 1 2 3 4 5 6 7 8 9; do generators+=(--generator "$d=cls/${kind}_$d.onnx"); done
        lrgan evaluate-adversarial "${generators[@]}" --classifier eval/clf-m1.pt --mnist "$mnist" \
            --per-class 2000 --steps 2000 --out "eval/adversarial-$kind" -q
    done
    python3 "$(dirname "$(realpath "$0")")/results_tables.py" eval
fi

