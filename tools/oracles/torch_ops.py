"""Writes OUT_DIR/torch_ops.safetensors: inputs and PyTorch's outputs for the
Tensor ops the Swift tests check (shapes, broadcasting, layers, losses,
optimizers), plus learning-rate sequences of PyTorch's schedulers.

    python tools/oracles/torch_ops.py OUT_DIR
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(7)
    t = {}

    def put(name, **kw):
        for k, v in kw.items():
            t[f"{name}.{k}"] = v.detach().clone().contiguous()

    a, b = torch.randn(2, 1, 3), torch.randn(4, 1)
    put("broadcast_add", a=a, b=b, out=a + b)
    put("broadcast_mul", a=a, b=b, out=a * b)
    put("broadcast_div", a=a, b=b.abs() + 0.5, out=a / (b.abs() + 0.5))
    x = torch.randn(2, 3, 4, 5, 6)
    put("sum_dims", a=x, out=x.sum(dim=(2, 4), keepdim=True))
    put("mean_dim", a=x, out=x.mean(dim=1))
    put("amax_dim", a=x, out=x.amax(dim=(3,)))
    put("std_all", a=x, out=x.std())
    put("gelu", a=x, out=F.gelu(x))
    put("leaky_relu", a=x, out=F.leaky_relu(x, 0.2))
    put("sigmoid", a=x, out=torch.sigmoid(x))
    put("max_pool3d", a=x, out=F.max_pool3d(x, 2, 2))
    put("avg_pool3d", a=x, out=F.avg_pool3d(x, 2, 2))
    put("adaptive_avg_pool3d", a=x, out=F.adaptive_avg_pool3d(x, (2, 3, 1)))
    put("adaptive_max_pool3d", a=x, out=F.adaptive_max_pool3d(x, (1, 2, 3)))
    put("trilinear", a=x, out=F.interpolate(x, size=(7, 3, 9), mode="trilinear", align_corners=False))
    put("trilinear_ac", a=x, out=F.interpolate(x, size=(7, 3, 9), mode="trilinear", align_corners=True))
    put("nearest", a=x, out=F.interpolate(x, size=(8, 10, 3), mode="nearest"))
    w = torch.randn(5, 3, 3, 3, 3)
    bias = torch.randn(5)
    put("conv3d", a=x, w=w, b=bias, out=F.conv3d(x, w, bias, stride=(1, 2, 1), padding=(1, 0, 2)))
    wt = torch.randn(3, 4, 2, 2, 2)
    put("conv_transpose3d", a=x, w=wt, b=torch.zeros(4), out=F.conv_transpose3d(x, wt, torch.zeros(4), stride=2))
    gamma, beta = torch.rand(3) + 0.5, torch.randn(3)
    put("instance_norm", a=x, w=gamma, b=beta, out=F.instance_norm(x, weight=gamma, bias=beta))
    rm, rv = torch.zeros(3), torch.ones(3)
    out = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1)
    put("batch_norm_train", a=x, w=gamma, b=beta, out=out, running_mean=rm, running_var=rv)
    logits, target = torch.randn(4, 14), (torch.rand(4, 14) > 0.7).float()
    pos_weight = torch.linspace(0.5, 3.0, 14)
    put("bce_logits", a=logits, target=target, pos_weight=pos_weight,
        out=F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight))
    put("bce_logits_none", a=logits, target=target,
        out=F.binary_cross_entropy_with_logits(logits, target, reduction="none"))
    seg_logits, seg_target = torch.randn(2, 4, 3, 5, 5), torch.randint(0, 4, (2, 3, 5, 5))
    put("cross_entropy", a=seg_logits, target=seg_target, out=F.cross_entropy(seg_logits, seg_target))
    lin_w, lin_b, lin_x = torch.randn(6, 4), torch.randn(6), torch.randn(3, 4)
    put("linear", a=lin_x, w=lin_w, b=lin_b, out=F.linear(lin_x, lin_w, lin_b))

    # Optimizers: three steps on a quadratic from a fixed start.
    for name, make in [
        ("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05)),
        ("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        ("adam", lambda p: torch.optim.Adam(p, lr=0.01)),
    ]:
        start = torch.randn(10)
        p = start.clone().requires_grad_(True)
        opt = make([p])
        for _ in range(3):
            opt.zero_grad()
            ((p - 1.0) ** 2).sum().backward()
            opt.step()
        put(f"opt_{name}", start=start, out=p)

    # Schedulers: learning rates over 12 epochs for a fixed metric sequence.
    metrics = [1.0, 0.9, 0.91, 0.92, 0.93, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9]
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-3)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=3, factor=0.5)
    lrs = []
    for m in metrics:
        plateau.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    put("plateau", metrics=torch.tensor(metrics, dtype=torch.float64), out=torch.tensor(lrs, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        cosine.step()
    put("cosine", out=torch.tensor(lrs, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1)
    poly = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=10, power=0.9)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        poly.step()
    put("poly", out=torch.tensor(lrs, dtype=torch.float64))
    # Element types as PyTorch's safetensors writes them.
    values = torch.linspace(-3.5, 100.25, 24).reshape(2, 3, 4)
    for name, dtype in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16),
                        ("i64", torch.int64), ("u8", torch.uint8)]:
        t[f"dtype.{name}"] = (values.abs() if dtype == torch.uint8 else values).to(dtype)
    save_file(t, os.path.join(out_dir, "torch_ops.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fixtures")
