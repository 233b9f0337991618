"""Counts the FLOPs of the reference UNet3D's forward and training step with
PyTorch's own FlopCounterMode: the arithmetic floor quoted in BENCHMARKS.md."""
import os
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracles"))
from reference_unet import UNet3D  # noqa: E402

for size in sys.argv[1:] or ["32x64x64", "64x128x128"]:
    d, h, w = (int(v) for v in size.split("x"))
    model = UNet3D()
    with FlopCounterMode(display=False) as fwd:
        with torch.no_grad():
            model.eval()(torch.randn(1, 1, d, h, w))
    model.train()
    with FlopCounterMode(display=False) as step:
        out = model(torch.randn(2, 1, d, h, w))
        torch.nn.BCELoss()(out, torch.rand(2, 14).round()).backward()
    print(f"{size}: forward batch 1 {fwd.get_total_flops() / 1e9:.1f} GFLOP, "
          f"train step batch 2 {step.get_total_flops() / 1e9:.1f} GFLOP")
