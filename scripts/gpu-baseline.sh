#!/usr/bin/env bash
# Reference-mode baseline on a GPU machine without Swift (the device tool): 200 synthetic training
# series (seed 1) and 100 held-out (seed 2), the notebook's network and preprocessing at 64×128×128,
# 20 epochs, then predict and evaluate the held-out set. Uses the static willis in .gpu/willis.gz
# (see scripts/gpu-check.sh for how to build it). Results under $OUT (or /tmp/willis-gpu). ~4 minutes.
set -uo pipefail
out=${OUT:-/tmp/willis-gpu}
mkdir -p "$out"
exec > >(tee "$out/baseline.log") 2>&1
bin=/tmp/willis
gunzip -c .gpu/willis.gz > "$bin" && chmod +x "$bin" || exit 1
py=$(command -v python3)
nvidia-smi --query-gpu=name --format=csv,noheader
scripts/build-engine --python "$py" --out /tmp/willis-engine > /dev/null || exit 1
export WILLIS_ENGINE=/tmp/willis-engine/libwillis_engine.so
# The codec libraries from Debian travel with the binary (the GPU image has none of them).
export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
time "$bin" synth --out /tmp/d/train --count 200 --seed 1 2>/dev/null
time "$bin" synth --out /tmp/d/test --count 100 --seed 2 2>/dev/null
time "$bin" train --data /tmp/d/train --out /tmp/run --epochs 20 --device cuda
cp /tmp/run/metrics.jsonl "$out/"
time "$bin" predict /tmp/d/test/series --weights /tmp/run/model.safetensors --device cuda --out "$out/submission.csv" 2>/dev/null
"$bin" evaluate --labels /tmp/d/test/train.csv --predictions "$out/submission.csv" | tee "$out/evaluate.txt"
