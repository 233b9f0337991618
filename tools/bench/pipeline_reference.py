"""The Python side of `willis bench pipeline`: the reference notebook's prediction path, stage by stage,
on one DICOM series folder, timed the way Willis times its own (one warm-up, then every repeat).

    python tools/bench/pipeline_reference.py FOLDER [--repeat N] [--threads T] [--device cpu]
        [--stages load,preprocess,forward,predict,matmul] [--rss-only]

Stages (the notebook's functions, copied from its cells):
  load:       load_dicom_series (sorted glob, pydicom dcmread + pixel_array, np.stack) plus the rescale to
              HU that the notebook's comments intend (what Willis returns);
  preprocess: normalize_volume + resize_volume (scikit-image resize, mode='constant', anti_aliasing=True)
              of that HU volume to 64×128×128;
  forward:    UNet3D (base 16) on the 1×1×64×128×128 input, eval mode, no grad;
  predict:    predict_single_scan exactly: load (stored values, as the notebook does) → normalize →
              resize → forward → probabilities;
  matmul:     a 2048³ float32 matmul, to give the engine's arithmetic peak on this machine.
--rss-only runs predict_single_scan once and reports only the process's peak resident memory, and its
peak before the series (Python, torch and the model: "baseline_rss_bytes").
Prints one JSON object: {"torch", "threads", "stages": {name: [seconds...]}, "matmul_gflops", "max_rss_bytes"}.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "oracles"))
from reference_unet import UNet3D  # noqa: E402


sys.path.insert(0, os.path.dirname(__file__))
from dicom_reference import notebook as load_dicom_series  # noqa: E402  the notebook's loop, verbatim
from dicom_reference import notebook_hu as load_hu  # noqa: E402  the same loop with the HU rescale


def normalize_volume(volume):
    volume = volume.astype(np.float32)
    volume = np.clip(volume, -1000, 1000)
    return (volume + 1000) / 2000.0


def resize_volume(volume, target_shape=(64, 128, 128)):
    from skimage.transform import resize
    return resize(volume, target_shape, mode="constant", anti_aliasing=True)


def predict_single_scan(model, series_path, device):
    model.eval()
    volume = load_dicom_series(series_path)
    volume = normalize_volume(volume)
    volume = resize_volume(volume, target_shape=(64, 128, 128))
    volume = np.expand_dims(volume, axis=0)
    volume = np.expand_dims(volume, axis=0)
    volume = torch.from_numpy(volume).float().to(device)
    with torch.no_grad():
        prediction = model(volume)
    return prediction.cpu().numpy()[0].tolist()


def peak_rss():
    """This process's peak resident memory in bytes. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    from the parent across fork and exec, so a child of a large process would report the parent's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def timed(fn, repeat, device):
    fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append(time.perf_counter() - start)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--stages", default="load,preprocess,forward,predict,matmul")
    ap.add_argument("--rss-only", action="store_true")
    ap.add_argument("--predict-folder", action="store_true",
                    help="FOLDER holds series folders: run predict_single_scan on each once, report the total")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = UNet3D().to(device).eval()
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "stages": {}}
    if args.predict_folder:
        folders = sorted(os.path.join(args.folder, d) for d in os.listdir(args.folder))
        start = time.perf_counter()
        for f in folders:
            predict_single_scan(model, f, device)
        result["series"] = len(folders)
        result["stages"]["predict_folder"] = [time.perf_counter() - start]
        print(json.dumps(result))
        return
    if args.rss_only:
        result["baseline_rss_bytes"] = peak_rss()
        predict_single_scan(model, args.folder, device)
        result["max_rss_bytes"] = peak_rss()
        print(json.dumps(result))
        return
    stages = args.stages.split(",")
    hu = load_hu(args.folder) if "preprocess" in stages else None
    for stage in stages:
        if stage == "load":
            result["stages"]["load"] = timed(lambda: load_hu(args.folder), args.repeat, device)
        elif stage == "preprocess":
            result["stages"]["preprocess"] = timed(lambda: resize_volume(normalize_volume(hu)), args.repeat, device)
        elif stage == "forward":
            x = torch.rand(1, 1, 64, 128, 128, device=device)

            def forward():
                with torch.no_grad():
                    model(x)
            result["stages"]["forward"] = timed(forward, args.repeat, device)
        elif stage == "predict":
            result["stages"]["predict"] = timed(lambda: predict_single_scan(model, args.folder, device), args.repeat, device)
        elif stage == "matmul":
            a = torch.rand(2048, 2048, device=device)
            b = torch.rand(2048, 2048, device=device)
            t = timed(lambda: a @ b, max(3, args.repeat), device)
            result["matmul_gflops"] = 2 * 2048 ** 3 / min(t) / 1e9
    result["max_rss_bytes"] = peak_rss()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
