"""Counts the FLOPs of the reference UNet3D's forward and training step with
PyTorch's own FlopCounterMode: the arithmetic floor quoted in BENCHMARKS.md.
`candidate-classifier` (or `candidate-classifier:D` for depth D, 1 when not given) as the
size counts the second stage's instead (its location head on, 32 cubes of 24^3, as
`willis bench engine --model candidate-classifier --classifier-depth D`)."""
import os
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracles"))
from reference_unet import UNet3D  # noqa: E402
from candidate_classifier import CandidateClassifier  # noqa: E402


def candidate_classifier(depth):
    model = CandidateClassifier(16, 1, names_locations=True, depth=depth)
    x, positions = torch.randn(32, 1, 24, 24, 24), torch.randn(32, 3) * 30
    with FlopCounterMode(display=False) as fwd:
        with torch.no_grad():
            model.eval()(x, positions)
    model.train()
    with FlopCounterMode(display=False) as step:
        logits, locations = model(x, positions)
        (torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.rand(32).round())
         + torch.nn.functional.cross_entropy(locations, torch.arange(32) % 13)).backward()
    print(f"candidate classifier at depth {depth}, 32 cubes of 24^3: forward {fwd.get_total_flops() / 1e9:.2f} GFLOP, "
          f"train step {step.get_total_flops() / 1e9:.2f} GFLOP")


for size in sys.argv[1:] or ["32x64x64", "64x128x128"]:
    if size.split(":")[0] == "candidate-classifier":
        candidate_classifier(int(size.split(":")[1]) if ":" in size else 1)
        continue
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
