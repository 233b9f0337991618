"""Oracles for the detector's second stage (Sources/Models/CandidateClassifier.swift).

    python tools/oracles/candidate_classifier.py forward WEIGHTS PROBE OUT [bf16]
        Builds the classifier as a PyTorch module, loads WEIGHTS (written by Willis) with
        load_state_dict(strict=True), runs PROBE's `input` [N, 1, P, P, P] in eval mode and writes the
        logits [N] to OUT as `logits`. The input's channels (1, or 2 with a context channel) and the
        depth (further residual convolutions `residual1.J`, `residual2.J`) are read from the weights.
        Weights with the location head (`location.hidden`, `location.out`) also take
        PROBE's `positions` [N, 3] (mm in the crop frame) and write the 13 location logits [N, 13] as
        `locations`. With bf16, the forward runs under torch.autocast("cpu", dtype=torch.bfloat16) and
        the outputs are written as float32.

    python tools/oracles/candidate_classifier.py cube PROBE OUT
        PROBE holds `image` [D, H, W], `centres` [M, 3] (sample coordinates i, j, k) and `size` [1];
        writes `cubes` [M, size, size, size]: each cube centred on its centre, samples beyond the image
        repeating its edge (numpy's edge padding).

    python tools/oracles/candidate_classifier.py context PROBE OUT
        As `cube`, with `scale` [1] too: writes `cubes` [M, size, size, size], each the cube of
        size * scale samples around its centre, averaged over scale^3 blocks (the context channel).
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


POSITION_SCALE_MM = 50.0


class LocationHead(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.hidden = nn.Linear(features + 3, 64)
        self.out = nn.Linear(64, 13)

    def forward(self, pooled, positions):
        x = torch.cat([pooled, positions / POSITION_SCALE_MM], dim=1)
        return self.out(nn.functional.leaky_relu(self.hidden(x), 0.01))


class CandidateClassifier(nn.Module):
    def __init__(self, f, channels=1, names_locations=False, depth=1):
        super().__init__()
        self.block0, self.down0 = Block(channels, f), nn.Conv3d(f, 2 * f, 2, stride=2)
        self.block1, self.down1 = Block(2 * f, 2 * f), nn.Conv3d(2 * f, 4 * f, 2, stride=2)
        self.block2 = Block(4 * f, 4 * f)
        self.residual1 = nn.ModuleList(Block(2 * f, 2 * f) for _ in range(depth - 1))
        self.residual2 = nn.ModuleList(Block(4 * f, 4 * f) for _ in range(depth - 1))
        self.head = nn.Linear(8 * f, 1)
        self.location = LocationHead(8 * f) if names_locations else None

    def forward(self, x, positions=None):
        x = self.block1(self.down0(self.block0(x)))
        for block in self.residual1:
            x = x + block(x)
        x = self.block2(self.down1(x))
        for block in self.residual2:
            x = x + block(x)
        pooled = torch.cat([x.mean(dim=(2, 3, 4)), x.amax(dim=(2, 3, 4))], dim=1)
        logits = self.head(pooled).flatten()
        if self.location is None:
            return logits
        return logits, self.location(pooled, positions)


def forward(weights, probe, out, precision="fp32"):
    state = load_file(weights)
    names = "location.hidden.weight" in state
    depth = 1 + sum(1 for name in state if name.startswith("residual1.") and name.endswith(".conv.weight"))
    model = CandidateClassifier(state["block0.conv.weight"].shape[0], state["block0.conv.weight"].shape[1], names, depth)
    model.load_state_dict(state, strict=True)
    model.eval()
    p = load_file(probe)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        if names:
            logits, locations = model(p["input"], p["positions"])
            save_file({"logits": logits.float().contiguous(), "locations": locations.float().contiguous()}, out)
        else:
            save_file({"logits": model(p["input"]).float().contiguous()}, out)


def cubes(image, centres, size):
    pad = size + int(np.abs(centres).max()) + 1  # wide enough for every cube to lie inside
    padded = np.pad(image, pad, mode="edge")
    found = []
    for i, j, k in centres:
        # The cube's first sample: its centre less (size - 1) / 2, rounded half up.
        start = [int(np.floor(c - (size - 1) / 2 + 0.5)) + pad for c in (k, j, i)]
        found.append(padded[start[0]:start[0] + size, start[1]:start[1] + size, start[2]:start[2] + size])
    return np.stack(found)


def cube(probe, out):
    p = load_numpy(probe)
    found = cubes(p["image"], p["centres"], int(p["size"][0]))
    save_numpy({"cubes": np.ascontiguousarray(found.astype(np.float32))}, out)


def context(probe, out):
    p = load_numpy(probe)
    size, scale = int(p["size"][0]), int(p["scale"][0])
    wide = cubes(p["image"].astype(np.float64), p["centres"], size * scale)
    pooled = wide.reshape(len(wide), size, scale, size, scale, size, scale).mean(axis=(2, 4, 6))
    save_numpy({"cubes": np.ascontiguousarray(pooled.astype(np.float32))}, out)


if __name__ == "__main__":
    {"forward": forward, "cube": cube, "context": context}[sys.argv[1]](*sys.argv[2:])
