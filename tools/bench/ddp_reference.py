"""The Python side of `willis bench distributed`: the reference notebook's UNet3D trained with PyTorch's
DistributedDataParallel (Gloo on loopback for CPU, NCCL for CUDA), world size W, batch B per process,
on fixed random inputs. DDP all-reduces gradients in 25 MB buckets while backward runs (autograd hooks).

Prints one JSON line from rank 0: {"torch": version, "step": [seconds...], "threads": n}.
"""
import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracles"))
from reference_unet import UNet3D  # noqa: E402


def worker(rank, args, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(args.threads)
    device = torch.device(f"cuda:{rank}" if args.device == "cuda" else "cpu")
    if args.world > 1:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo", rank=rank, world_size=args.world)
    torch.manual_seed(0)
    model = UNet3D().to(device)
    net = torch.nn.parallel.DistributedDataParallel(model) if args.world > 1 else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    d, h, w = (int(v) for v in args.size.split("x"))
    g = torch.Generator().manual_seed(1 + rank)
    x = torch.randn(args.batch, 1, d, h, w, generator=g).to(device)
    y = (torch.rand(args.batch, 14, generator=g) > 0.5).float().to(device)
    loss_fn = torch.nn.BCELoss()
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    if rank == 0:
        print(json.dumps({"torch": torch.__version__, "step": times, "threads": torch.get_num_threads()}), flush=True)
    if args.world > 1:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--size", default="32x64x64")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if args.world == 1:
        worker(0, args, port)
    else:
        mp.spawn(worker, args=(args, port), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
