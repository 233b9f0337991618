"""Oracle for the Willis → PyTorch direction.

    python tools/oracles/load_willis_weights.py WEIGHTS PROBE OUT

Loads WEIGHTS (written by Willis) into the reference UNet3D with
load_state_dict(strict=True), runs PROBE's `input` in eval mode and writes the
output to OUT. Exits non-zero if strict loading fails.
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from reference_unet import UNet3D  # noqa: E402

weights, probe, out = sys.argv[1:4]
state = load_file(weights)
base = state["enc1.0.weight"].shape[0]
model = UNet3D(in_channels=1, base_filters=base, num_classes=14)
model.load_state_dict(state, strict=True)
model.eval()
with torch.no_grad():
    save_file({"output": model(load_file(probe)["input"])}, out)
print("loaded strict=True:", len(state), "tensors")
