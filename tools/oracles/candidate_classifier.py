"""Oracles for the detector's second stage (Sources/Models/CandidateClassifier.swift).

    python tools/oracles/candidate_classifier.py forward WEIGHTS PROBE OUT
        Builds the classifier as a PyTorch module, loads WEIGHTS (written by Willis) with
        load_state_dict(strict=True), runs PROBE's `input` [N, 1, P, P, P] in eval mode and writes the
        logits [N] to OUT as `logits`.

    python tools/oracles/candidate_classifier.py cube PROBE OUT
        PROBE holds `image` [D, H, W], `centres` [M, 3] (sample coordinates i, j, k) and `size` [1];
        writes `cubes` [M, size, size, size]: each cube centred on its centre, samples beyond the image
        repeating its edge (numpy's edge padding).
"""
import sys

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy, save_file as save_numpy
from safetensors.torch import load_file, save_file
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.InstanceNorm3d(cout, affine=True)

    def forward(self, x):
        return nn.functional.leaky_relu(self.norm(self.conv(x)), 0.01)


class CandidateClassifier(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.block0, self.down0 = Block(1, f), nn.Conv3d(f, 2 * f, 2, stride=2)
        self.block1, self.down1 = Block(2 * f, 2 * f), nn.Conv3d(2 * f, 4 * f, 2, stride=2)
        self.block2 = Block(4 * f, 4 * f)
        self.head = nn.Linear(8 * f, 1)

    def forward(self, x):
        x = self.block2(self.down1(self.block1(self.down0(self.block0(x)))))
        pooled = torch.cat([x.mean(dim=(2, 3, 4)), x.amax(dim=(2, 3, 4))], dim=1)
        return self.head(pooled).flatten()


def forward(weights, probe, out):
    state = load_file(weights)
    model = CandidateClassifier(state["block0.conv.weight"].shape[0])
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        save_file({"logits": model(load_file(probe)["input"]).contiguous()}, out)


def cube(probe, out):
    p = load_numpy(probe)
    image, centres, size = p["image"], p["centres"], int(p["size"][0])
    pad = size + int(np.abs(centres).max()) + 1  # wide enough for every cube to lie inside
    padded = np.pad(image, pad, mode="edge")
    cubes = []
    for i, j, k in centres:
        # The cube's first sample: its centre less (size - 1) / 2, rounded half up.
        start = [int(np.floor(c - (size - 1) / 2 + 0.5)) + pad for c in (k, j, i)]
        cubes.append(padded[start[0]:start[0] + size, start[1]:start[1] + size, start[2]:start[2] + size])
    save_numpy({"cubes": np.ascontiguousarray(np.stack(cubes).astype(np.float32))}, out)


if __name__ == "__main__":
    {"forward": forward, "cube": cube}[sys.argv[1]](*sys.argv[2:])
