"""Where a 3D U-Net training step's CPU time goes, with PyTorch on this machine's libtorch: each 3×3×3
convolution's forward, input gradient and weight gradient (oneDNN, as both PyTorch and Willis run them),
in GFLOP/s, beside the same weight gradient done as 27 matrix products over shifted views of the padded
input (no im2col copy), and a whole step of a small two-level U-Net in contiguous and channels-last
layouts. Used in RESULTS.md (stop 31) to decide whether the CPU step on an AVX2 host can be made faster.

    python tools/analysis/conv3d_cpu_profile.py
"""
import time

import torch
import torch.nn as nn


def timed(f, n=3):
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n


def backward(g, x, w, mask):
    return torch.ops.aten.convolution_backward(g, x, w, [w.shape[0]], [1, 1, 1], [1, 1, 1], [1, 1, 1], False, [0, 0, 0], 1, mask)


def weight_gradient_by_shifts(g, x):
    """dW[:, :, a, b, c] = Σ_p g[:, p] · x_pad[:, p + shift(a, b, c)]: with g zero-padded like x, every
    shift is a contiguous slice of the flattened volume, so each is one matrix product."""
    n, cin, d, h, w = x.shape
    flat_x = nn.functional.pad(x, (1,) * 6).reshape(n, cin, -1)
    flat_g = nn.functional.pad(g, (1,) * 6).reshape(n, g.shape[1], -1)
    plane, row = (h + 2) * (w + 2), w + 2
    first, last = plane + row + 1, flat_x.shape[2] - (plane + row + 1)
    out = torch.empty(g.shape[1], cin, 3, 3, 3)
    for a in range(3):
        for b in range(3):
            for c in range(3):
                s = (a - 1) * plane + (b - 1) * row + (c - 1)
                out[:, :, a, b, c] = sum(flat_g[i, :, first:last] @ flat_x[i, :, first + s:last + s].T for i in range(n))
    return out


def block(cin, cout):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01),
                         nn.Conv3d(cout, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01))


class TwoLevelUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.e1, self.e2, self.e3 = block(1, 16), block(16, 32), block(32, 64)
        self.up2, self.d2 = nn.ConvTranspose3d(64, 32, 2, 2), block(64, 32)
        self.up1, self.d1 = nn.ConvTranspose3d(32, 16, 2, 2), block(32, 16)
        self.out = nn.Conv3d(16, 2, 1)

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(nn.functional.max_pool3d(a, 2))
        c = self.e3(nn.functional.max_pool3d(b, 2))
        d = self.d2(torch.cat([self.up2(c), b], 1))
        return self.out(self.d1(torch.cat([self.up1(d), a], 1)))


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("conv 3x3x3, batch 2        forward      input grad   weight grad  weight grad by shifts (max rel. diff.)")
    for cin, cout, shape in [(32, 16, (48, 64, 64)), (16, 16, (48, 64, 64)), (64, 32, (24, 32, 32)), (1, 16, (48, 64, 64))]:
        x, w, g = torch.randn(2, cin, *shape), torch.randn(cout, cin, 3, 3, 3), torch.randn(2, cout, *shape)
        flops = 2 * cin * cout * 27 * 2 * shape[0] * shape[1] * shape[2]
        with torch.no_grad():
            forward = timed(lambda: nn.functional.conv3d(x, w, padding=1))
        grad_input = timed(lambda: backward(g, x, w, [True, False, False]))
        grad_weight = timed(lambda: backward(g, x, w, [False, True, False]))
        shifted = timed(lambda: weight_gradient_by_shifts(g, x))
        reference = backward(g, x, w, [False, True, False])[1]
        difference = ((weight_gradient_by_shifts(g, x) - reference).abs().max() / reference.abs().max()).item()
        cells = [f"{t * 1000:5.0f} ms {flops / t / 1e9:3.0f} GF/s" for t in (forward, grad_input, grad_weight, shifted)]
        print(f"{cin:2d}->{cout:2d} at {'x'.join(map(str, shape)):9s}  " + "  ".join(cells) + f" ({difference:.0e})")
    for layout in ("contiguous", "channels_last_3d"):
        torch.manual_seed(0)
        model, x = TwoLevelUNet(), torch.randn(2, 1, 48, 64, 64)
        if layout != "contiguous":
            model, x = model.to(memory_format=torch.channels_last_3d), x.contiguous(memory_format=torch.channels_last_3d)
        optimizer = torch.optim.AdamW(model.parameters())

        def step():
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
        print(f"two-level U-Net training step, batch 2 at 48x64x64, {layout}: {timed(step) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
