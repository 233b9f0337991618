#!/usr/bin/env bash
# Trains the detector on one CUDA GPU inside a fixed wall-clock budget, on a machine with a CUDA PyTorch and
# g++ but no Swift (the device tool), and brings back the weights to score here. Build and pack as in
# scripts/gpu-check.sh (the static willis in .gpu/willis.gz, the codec libraries in .gpu/lib), then there:
#
#   BUDGET_S=530 scripts/gpu-detector.sh        # results under $OUT (or /tmp/willis-gpu)
#
# The data are stop 12's training set and 300 series more, written there by willis synth (200 small series, seed 1, and 600
# medium ones, seed 11, of which stop 12 had the first 300; all with vessel labels, joined into one RSNA folder), while the engine compiles.
# The recipe is experiments/detector-gpu.toml (the sub-voxel input of detector-subvoxel.toml, from scratch,
# batch 8). One epoch is run first to build the input cache and time an epoch; the real run then gets as
# many epochs as the rest of the budget holds, so that its cosine schedule ends inside it (--time-limit
# guards the end). The weights come back in pieces of 15 MB (the device tool returns files of 16 MiB at most):
#   cat OUT/model.safetensors.part-* > model.safetensors
set -uo pipefail
out=${OUT:-/tmp/willis-gpu}
mkdir -p "$out"
exec > >(tee "$out/gpu-detector.log") 2>&1
budget=${BUDGET_S:-530}
# A dry run on a CPU machine with a few series: PYTHON=.venv/bin/python DEVICE=cpu SMALL=10 MEDIUM=10 HELD=2 BUDGET_S=200 scripts/gpu-detector.sh
# TRAIN_FLAGS="--precision fp32 --batch-size 16": flags for every training run.
# MEASURE=1: after the first epoch (bf16, batch 8), one epoch each in fp32, with cuDNN autotuning, and at batch 16; then stop.
device=${DEVICE:-cuda}
small=${SMALL:-200} medium=${MEDIUM:-600} held=${HELD:-20}
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
stamp() { echo "[$(elapsed) s] $*"; }
bin=/tmp/willis
gunzip -c .gpu/willis.gz > "$bin" && chmod +x "$bin" || exit 1
py=${PYTHON:-$(command -v python3)}
export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
nproc
( scripts/build-engine --python "$py" --out /tmp/willis-engine > /tmp/engine.log 2>&1; echo $? > /tmp/engine.rc ) &
engine_job=$!

d=/tmp/d
"$bin" synth --out $d/small --count $small --seed 1 --segmentation-fraction 1 > /dev/null || exit 1
"$bin" synth --out $d/medium --count $medium --size medium --seed 11 --segmentation-fraction 1 > /dev/null || exit 1
scripts/join-rsna $d/train $d/small $d/medium || exit 1
# The first 20 series of the 300-series held-out set (RESULTS.md, stop 20): predicted there on the GPU at the
# end, and here on the CPU with the same weights, to compare the two devices and time the GPU's prediction.
"$bin" synth --out $d/held20 --count $held --size medium --seed 5 --orientations tilted --syntaxes compressed > /dev/null || exit 1
stamp "data written: $(ls $d/train/series | wc -l) training series, $(ls $d/held20/series | wc -l) held out"
wait $engine_job
tail -2 /tmp/engine.log
[ "$(cat /tmp/engine.rc)" = 0 ] || exit 1
export WILLIS_ENGINE=/tmp/willis-engine/libwillis_engine.so
stamp "engine built"
"$bin" doctor | head -7
"$bin" check $d/train | tail -3

recipe=experiments/detector-gpu.toml
# VALIDATE_EVERY=N validates every N epochs of the real run (default 1, as stop 24's run did); the timed first
# epoch is always validated, so the epoch count it gives errs on the short side.
# TRAIN_FLAGS adds flags to every training run (e.g. "--precision fp32 --batch-size 16", the fastest per sample
# measured in stop 24).
read -ra train_flags <<< "${TRAIN_FLAGS:-}"
common=(--data $d/train --config $recipe --folds 20 --device $device "${train_flags[@]}")
"$bin" train "${common[@]}" --out /tmp/calibrate --epochs 1 || exit 1
epoch_s=$("$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["seconds"])' /tmp/calibrate/metrics.jsonl)
if [ -n "${MEASURE:-}" ]; then
  # Timing only: one epoch of each variant from scratch (the input cache is built), no weights brought back.
  "$bin" train "${common[@]}" --out /tmp/m-fp32 --epochs 1 --precision fp32 | grep "^epoch"
  "$bin" train "${common[@]}" --out /tmp/m-cudnn --epochs 1 --cudnn-benchmark | grep "^epoch"
  "$bin" train "${common[@]}" --out /tmp/m-b16 --epochs 1 --batch-size 16 | grep "^epoch"
  stamp "measured"
  exit 0
fi
# Kept back: the run's start (weights, cache check), the location prior's fit and the copies, ~30 s, and
# the held-out prediction, ~60 s.
left=$(( budget - $(elapsed) - 90 ))
epochs=$("$py" -c "import sys; print(max(1, int($left / $epoch_s)))")
stamp "one epoch: $epoch_s s; $left s left: $epochs epochs"
"$bin" train "${common[@]}" --out /tmp/run --epochs "$epochs" --validate-every "${VALIDATE_EVERY:-1}" --time-limit "$("$py" -c "print($left / 60)")"
stamp "trained"
cp /tmp/run/metrics.jsonl "$out/"
time timeout 120 "$bin" predict $d/held20/series --weights /tmp/run/model.safetensors --device $device --workers 12 --results /tmp/held20 \
  && cp /tmp/held20/submission.csv "$out/held20-cuda.csv"
split -b 15000000 -d /tmp/run/model.safetensors "$out/model.safetensors.part-"
sha256sum /tmp/run/model.safetensors
ls -l "$out"
stamp "done"
