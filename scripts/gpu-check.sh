#!/usr/bin/env bash
# The prepared GPU check, run from the repo root on a machine with a CUDA
# PyTorch and g++ but no Swift (e.g. through the device tool):
#
#   here:  swift build -c release --static-swift-stdlib --scratch-path .build-static --product willis
#          mkdir -p .gpu/lib && strip -o .gpu/willis .build-static/release/willis && gzip -f .gpu/willis
#          cp -L /usr/lib/x86_64-linux-gnu/{libturbojpeg.so.0,libcharls.so.2,libopenjp2.so.7,libz.so.1} .gpu/lib/
#   there: scripts/gpu-check.sh            # results under $OUT (or /tmp/willis-gpu)
#
# It builds the engine against that machine's torch, then runs `willis doctor`,
# `willis bench engine` on CUDA in float32, float32 + cuDNN autotuning, and
# bf16 autocast, each beside Python PyTorch on the same card, and `willis bench
# pipeline` on a full-size (300×512×512) synthetic CT series written there by
# `willis synth`: load, preprocess, forward, end-to-end predict (the pydicom and
# scikit-image reference stages run only if that Python has them), and the engine
# bench again with channels-last 3D weights and activations. The first part took
# about 4 minutes on an H200 in an earlier session; the added runs are not yet
# timed (estimated 3-4 more minutes).
set -uo pipefail
out=${OUT:-/tmp/willis-gpu}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
bin=.gpu/willis
if [ -f .gpu/willis.gz ]; then gunzip -c .gpu/willis.gz > /tmp/willis && chmod +x /tmp/willis && bin=/tmp/willis; fi
py=$(command -v python3)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$py" -c 'import torch; print("python torch", torch.__version__, torch.cuda.get_device_name(0))'
time scripts/build-engine --python "$py" --out /tmp/willis-engine || exit 1
export WILLIS_ENGINE=/tmp/willis-engine/libwillis_engine.so
# The codec libraries from Debian travel with the binary (the GPU image has none of them).
export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$bin" doctor | head -7
common=(--device cuda --python "$py" --sizes 32x64x64,64x128x128 --warmup 5 --iterations 30)
"$bin" bench engine "${common[@]}" --json "$out/engine_cuda_fp32.json"
"$bin" bench engine "${common[@]}" --cudnn-benchmark --json "$out/engine_cuda_fp32_cudnnbench.json"
"$bin" bench engine "${common[@]}" --autocast bf16 --json "$out/engine_cuda_bf16.json"
"$bin" bench engine "${common[@]}" --autocast bf16 --cudnn-benchmark --json "$out/engine_cuda_bf16_cudnnbench.json"
# Channels-last 3D weights and activations (cuDNN's NDHWC kernels), with autotuning, in fp32 and bf16.
"$bin" bench engine "${common[@]}" --channels-last --cudnn-benchmark --json "$out/engine_cuda_fp32_cl_cudnnbench.json"
"$bin" bench engine "${common[@]}" --channels-last --autocast bf16 --cudnn-benchmark --json "$out/engine_cuda_bf16_cl_cudnnbench.json"

# The whole prediction path on a full-size series (the GPU target: ≤ 0.5 s per series end to end).
"$bin" synth --out /tmp/willis-full --count 1 --size full --syntaxes uncompressed --seed 3 > /dev/null
series=$(ls -d /tmp/willis-full/series/*/ | head -1)
pydicom_flag=--no-pydicom
"$py" -c 'import pydicom, skimage' 2> /dev/null && pydicom_flag=
"$bin" bench pipeline --device cuda --python "$py" --series "$series" $pydicom_flag --repeats 5
