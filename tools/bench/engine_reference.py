"""The Python side of `willis bench engine`: the reference notebook's UNet3D
training step and inference forward in PyTorch eager mode, timed the same way
Willis times its own (warm-up, then every timed iteration's seconds).

Prints one JSON object on stdout: {"torch": version, "rows": [...]}.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracles"))
from reference_unet import UNet3D  # noqa: E402


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


if __name__ == "__main__":
    main()
