#!/usr/bin/env bash
# Both stages of the detector on one CUDA GPU in one lease, scored on the held-out set there: the run
# that stops 25-29 could only do half of (their second stages trained here on the CPU, on stop 24's
# five-minute GPU detector, whose weights a later machine no longer had). For the device tool, on a
# machine with a CUDA PyTorch and g++ but no Swift. Build and pack here as scripts/gpu-check.sh's header
# says (the static willis in .gpu/willis.gz, the codec libraries in .gpu/lib), then there:
#
#   scripts/gpu-pipeline.sh          # results under $OUT (or /tmp/willis-gpu)
#
# A device call lasts at most 600 s, so the first call starts it in the background and waits, and a
# second call on the still-warm machine waits for "done" and brings back $OUT:
#   call 1: (OUT=/tmp/gp setsid nohup scripts/gpu-pipeline.sh > /dev/null 2>&1 &); sleep 560; tail -5 /tmp/gp/gpu-pipeline.log
#   call 2: while pgrep -f gpu-pipeline.sh > /dev/null; do sleep 5; done; cp -r /tmp/gp/. $OUT/   # ended: "done", or why not
# (Untried: whether a process started that way outlives its call. If it does not, run the script in the
# foreground with a smaller DETECTOR_S and STEPS, so that everything fits in one call.)
#
# Stages, each writing what it has to $OUT before the next starts (not timed on a GPU yet; estimated
# from stop 24's figures: about 120 + 60 + DETECTOR_S + 250 + 150 s on an H200 with 16 cores):
#   1. data (willis synth, while the engine compiles): the detector's 800 training series (stop 24's: 200
#      small, seed 1, and 600 medium, seed 11), the second stage's 300 (the first 300 of those 600, as in
#      stops 26-29), validation (100, seed 41), 400 series whose points are further aneurysm cubes (seed 13)
#      and the held-out set (300, seed 5, tilted planes, compressed syntaxes), all as RESULTS.md wrote them;
#   2. the detector (experiments/detector-gpu.toml, fp32, batch 8: the fastest per sample in stop 24), for
#      DETECTOR_S seconds, its epochs set from a first epoch that also builds the input cache;
#   3. the second stage with stop 29's best single settings (dot-filter candidates, points of 400 more
#      series, aligned contrast, a 4-8 mm ignore zone), STEPS steps, on the GPU;
#   4. the held-out prediction with both stages, willis evaluate's report, and each series' candidates.
#
# A dry run on a CPU (tiny and slow, to check the script):
#   PYTHON=.venv/bin/python DEVICE=cpu SMALL=4 MEDIUM=8 VAL=4 POINTS=4 HELD=4 FIRST=6 STEPS=20 DETECTOR_S=60 \
#     BIN=.build/release/willis ENGINE=.build-engine/libwillis_engine.so scripts/gpu-pipeline.sh
set -uo pipefail
out=${OUT:-/tmp/willis-gpu}
mkdir -p "$out"
exec > >(tee "$out/gpu-pipeline.log") 2>&1
device=${DEVICE:-cuda}
small=${SMALL:-200} medium=${MEDIUM:-600} val=${VAL:-100} points=${POINTS:-400} held=${HELD:-300} first=${FIRST:-300}
detector_s=${DETECTOR_S:-240} steps=${STEPS:-8000}
workers=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
stamp() { echo "[$(elapsed) s] $*"; }
py=${PYTHON:-$(command -v python3)}
if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  bin=/tmp/willis
  gunzip -c .gpu/willis.gz > "$bin" && chmod +x "$bin" || exit 1
  export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
root=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
echo "$(nproc) cores; device $device"
if [ -n "${ENGINE:-}" ]; then
  export WILLIS_ENGINE=$root/$ENGINE
  engine_job=
else
  ( scripts/build-engine --python "$py" --out /tmp/willis-engine > /tmp/engine.log 2>&1; echo $? > /tmp/engine.rc ) &
  engine_job=$!
fi

d=/tmp/gp-data
rm -rf $d && mkdir -p $d
synth() { "$bin" synth --out "$d/$1" "${@:2}" > /dev/null || { stamp "synth $1 failed"; exit 1; }; }
synth small --count $small --seed 1 --segmentation-fraction 1
synth medium --count $medium --size medium --seed 11 --segmentation-fraction 1
synth train300 --count $first --size medium --seed 11 --segmentation-fraction 1
synth val --count $val --size medium --seed 41 --segmentation-fraction 1 --syntaxes uncompressed
synth points --count $points --size medium --seed 13
synth held --count $held --size medium --seed 5 --orientations tilted --syntaxes compressed
scripts/join-rsna $d/train $d/small $d/medium || exit 1
stamp "data written: $(ls $d/train/series | wc -l) detector series, $(ls $d/train300/series | wc -l) second-stage, $(ls $d/val/series | wc -l) validation, $(ls $d/points/series | wc -l) points, $(ls $d/held/series | wc -l) held out"
if [ -n "$engine_job" ]; then
  wait $engine_job
  tail -2 /tmp/engine.log
  [ "$(cat /tmp/engine.rc)" = 0 ] || exit 1
  export WILLIS_ENGINE=/tmp/willis-engine/libwillis_engine.so
  stamp "engine built"
fi
"$bin" doctor | head -7

# 2. The detector: one epoch builds the cache and times an epoch; the run gets the epochs DETECTOR_S holds.
recipe=$root/experiments/detector-gpu.toml
common=(--data $d/train --config $recipe --folds 20 --device $device --precision fp32)
"$bin" train "${common[@]}" --out /tmp/gp-calibrate --epochs 1 | grep -E "^(cache|epoch|warning)" || exit 1
epoch_s=$("$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["seconds"])' /tmp/gp-calibrate/metrics.jsonl)
epochs=$("$py" -c "print(max(1, int($detector_s / $epoch_s)))")
stamp "one epoch: $epoch_s s (validated); $epochs epochs in $detector_s s"
"$bin" train "${common[@]}" --out /tmp/gp-detector --epochs "$epochs" --validate-every 10 \
  --time-limit "$("$py" -c "print($detector_s / 60)")" | grep -E "^(epoch|time|warning)"
[ -f /tmp/gp-detector/model.safetensors ] || { stamp "no detector weights"; exit 1; }
cp /tmp/gp-detector/metrics.jsonl "$out/detector-metrics.jsonl"
split -b 15000000 -d /tmp/gp-detector/model.safetensors "$out/model.safetensors.part-"
sha256sum /tmp/gp-detector/model.safetensors
stamp "detector trained"

# 3. The second stage.
"$bin" train-candidates --data $d/train300 --detector /tmp/gp-detector/model.safetensors --out /tmp/gp-stage2 \
  --config $root/experiments/detector-subvoxel.toml --validation-data $d/val --positive-data $d/points \
  --dot-candidates 20 --align-contrast --ignore-mm 8 --steps "$steps" --device $device \
  | grep -vE "^step [0-9]+/[0-9]+: loss" | tee /tmp/gp-stage2.log
[ -f /tmp/gp-stage2/candidate-classifier.safetensors ] || { stamp "no second stage"; exit 1; }
cp /tmp/gp-stage2/candidate-classifier.safetensors "$out/"
stamp "second stage trained"

# 4. Held out: both stages, then the score with its interval, per modality and per location, and FROC.
"$bin" predict $d/held/series --weights /tmp/gp-detector/model.safetensors \
  --candidate-classifier /tmp/gp-stage2/candidate-classifier.safetensors --candidate-scoring classifier \
  --device $device --workers $workers --results /tmp/gp-held | tail -3
cp /tmp/gp-held/submission.csv "$out/heldout-submission.csv"
"$bin" evaluate --labels $d/held/train.csv --predictions /tmp/gp-held/submission.csv --results /tmp/gp-held \
  --truth $d/held/synth_aneurysms.csv > "$out/heldout-eval.txt" 2>&1
head -3 "$out/heldout-eval.txt"
# Each series' candidates (a few kB each), for the analyses here.
(cd /tmp/gp-held && tar czf "$out/heldout-candidates.tgz" series/*/candidates.json)
ls -l "$out"
stamp "done"
