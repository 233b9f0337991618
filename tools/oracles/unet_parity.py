"""Writes the UNet3D parity fixtures that the Swift tests compare against.

    python tools/oracles/unet_parity.py OUT_DIR

OUT_DIR/unet_parity.safetensors (base_filters 4):
  initial.<key>    state_dict before anything runs
  input, target    [2,1,16,32,32] input and [2,14] 0/1 target
  output, loss     train-mode forward (sigmoid) and nn.BCELoss
  grad.<param>     gradient of every parameter after loss.backward()
  after_step.<key> state_dict after one Adam(lr=1e-3) step
  eval_output      eval-mode forward of `input` after the step
OUT_DIR/unet16_state.safetensors: a base_filters 16 model's state_dict, as a
  notebook user would save it with safetensors.torch.save_file.
OUT_DIR/unet16_probe.safetensors: an input and that model's eval output.
"""
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from reference_unet import UNet3D  # noqa: E402


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    model = UNet3D(in_channels=1, base_filters=4, num_classes=14)
    tensors = {f"initial.{k}": v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 16, 32, 32)
    target = (torch.rand(2, 14) > 0.6).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    out = model(x)
    loss = torch.nn.BCELoss()(out, target)
    optimizer.zero_grad()
    loss.backward()
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad.clone()
    optimizer.step()
    tensors.update({f"after_step.{k}": v.clone() for k, v in model.state_dict().items()})
    model.eval()
    with torch.no_grad():
        tensors["eval_output"] = model(x)
    tensors.update(input=x, target=target, output=out.detach(), loss=loss.detach())
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, "unet_parity.safetensors"),
              metadata={"torch": torch.__version__})

    torch.manual_seed(99)
    big = UNet3D(in_channels=1, base_filters=16, num_classes=14).eval()
    count = sum(p.numel() for p in big.parameters())
    save_file(big.state_dict(), os.path.join(out_dir, "unet16_state.safetensors"),
              metadata={"parameter_count": str(count)})
    probe = torch.randn(1, 1, 16, 32, 32)
    with torch.no_grad():
        save_file({"input": probe, "output": big(probe)}, os.path.join(out_dir, "unet16_probe.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fixtures")
