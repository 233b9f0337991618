"""The Python side of `willis bench engine`: the reference notebook's UNet3D
training step and inference forward in PyTorch eager mode, timed the same way
Willis times its own (warm-up, then every timed iteration's seconds). With
--model candidate-classifier: the second stage's classifier with its location
head instead (tools/oracles/candidate_classifier.py; --classifier-depth), a step of AdamW on 32 cubes
of 24^3 with the aneurysm's BCE with logits plus the artery's cross-entropy, as
`willis train-candidates` steps; --sizes is then not read.

Prints one JSON object on stdout: {"torch": version, "rows": [...]}, and for the
candidate classifier also "parameters", the network's parameter count, which
Willis checks against its own so that both sides time the same network.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracles"))
from reference_unet import UNet3D  # noqa: E402
from candidate_classifier import CandidateClassifier  # noqa: E402

CANDIDATE_PATCH, CANDIDATE_BATCH = 24, 32


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, warmup, iters):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="32x64x64")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--autocast", default="none", choices=["none", "bf16", "fp16"])
    ap.add_argument("--cudnn-benchmark", action="store_true")
    ap.add_argument("--tf32", action="store_true", help="TF32 tensor-core math for matmul and convolution (CUDA)")
    ap.add_argument("--channels-last", action="store_true", help="model and inputs in channels_last_3d")
    ap.add_argument("--model", default="unet", choices=["unet", "candidate-classifier"])
    ap.add_argument("--classifier-depth", type=int, default=1, help="the candidate classifier's depth")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.autocast)
    if args.model == "candidate-classifier":
        rows, parameters = candidate_classifier(device, amp_dtype, args.warmup, args.iters, args.classifier_depth)
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows,
                          "parameters": parameters}))
        return
    for size in args.sizes.split(","):
        d, h, w = (int(v) for v in size.split("x"))
        model = UNet3D().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        criterion = torch.nn.BCELoss()
        x = torch.randn(args.batch, 1, d, h, w, device=device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
            x = x.to(memory_format=torch.channels_last_3d)
        y = (torch.rand(args.batch, 14, device=device) > 0.5).float()

        def forward(inp):
            if amp_dtype is None:
                return model(inp)
            with torch.autocast(device_type=device.type, dtype=amp_dtype):
                return model(inp)

        def train_step():
            model.train()
            opt.zero_grad()
            out = forward(x)
            # BCELoss is unsafe under autocast; the loss runs in float32.
            loss = criterion(out.float(), y)
            loss.backward()
            opt.step()

        rows.append({"stage": "train_step", "size": size, "batch": args.batch,
                     "samples": timed(train_step, device, args.warmup, args.iters)})
        x1 = x[:1].contiguous(memory_format=torch.channels_last_3d if args.channels_last else torch.contiguous_format)

        def infer():
            model.eval()
            with torch.no_grad():
                forward(x1)

        rows.append({"stage": "forward", "size": size, "batch": 1, "samples": timed(infer, device, args.warmup, args.iters)})
        del model, opt, x, y
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}))


def candidate_classifier(device, amp_dtype, warmup, iters, depth):
    p, n = CANDIDATE_PATCH, CANDIDATE_BATCH
    model = CandidateClassifier(16, 1, names_locations=True, depth=depth).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(n, 1, p, p, p, device=device)
    positions = torch.randn(n, 3, device=device) * 30
    y = (torch.rand(n, device=device) > 0.5).float()
    names = torch.arange(n, device=device) % 13

    def outputs():
        with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            logits, locations = model(x, positions)
        return logits.float(), locations.float()

    def train_step():
        model.train()
        opt.zero_grad()
        logits, locations = outputs()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
                + torch.nn.functional.cross_entropy(locations, names))
        loss.backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            outputs()

    size = f"{p}x{p}x{p}"
    rows = [{"stage": "train_step", "size": size, "batch": n, "samples": timed(train_step, device, warmup, iters)},
            {"stage": "forward", "size": size, "batch": n, "samples": timed(infer, device, warmup, iters)}]
    return rows, sum(t.numel() for t in model.parameters())


if __name__ == "__main__":
    main()
