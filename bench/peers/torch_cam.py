#!/usr/bin/python3
"""The PyTorch peer of camstream's video bench: what a torch-cam / pytorch-grad-cam user writes for CAM
over a video, on the CPU.

  /usr/bin/python3 bench/peers/torch_cam.py --ffmpeg PATH --input clip.mp4 --out peer.mp4 \
      [--threads N] [--max-frames N] [--crf 23] [--preset veryfast] [--alpha 0.5]

Per frame: ffmpeg (the same binary camstream uses) decodes the clip to full-size RGB on a pipe; the frame is
resized to 224x224 (bilinear) and normalised with the ImageNet statistics; torchvision's resnet50 (random
weights, weights=None, eval mode) runs under inference_mode with a forward hook on layer4; the class
activation map of the top class is the original formula of Zhou et al. (CVPR 2016, sec. 2):
M_c(x, y) = sum_k w_k^c f_k(x, y), with w^c the row of fc.weight for class c; it is min-max normalised,
upsampled bilinearly to the frame size, coloured with a turbo-like colormap and blended at `alpha` over the
frame; the blended RGB frames go down a pipe to a second ffmpeg encoding H.264 (libx264, same preset and
CRF as camstream). Prints one JSON line with fps and a per-stage breakdown (ms per frame).

Threads: torch.set_num_threads(N), the same count camstream's ONNX Runtime session gets.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision


def probe_size(ffmpeg, path):
    """Width, height and frame rate from ffmpeg's banner (no ffprobe needed)."""
    r = subprocess.run([ffmpeg, '-hide_banner', '-i', path], capture_output=True, text=True)
    import re
    m = re.search(r'Video: .*?, (\d{2,5})x(\d{2,5})', r.stderr)
    rate = re.search(r'(\d+(?:\.\d+)?) fps', r.stderr) or re.search(r'(\d+(?:\.\d+)?) tbr', r.stderr)
    if not m:
        sys.exit(f'torch_cam.py: cannot read the video size of {path}: {r.stderr[-400:]}')
    return int(m.group(1)), int(m.group(2)), (rate.group(1) if rate else '30')


def turbo_lut():
    """A 256-entry turbo-like colormap (Google's polynomial approximation of turbo), uint8 RGB."""
    x = np.linspace(0.0, 1.0, 256)
    r = 0.13572138 + x * (4.61539260 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))))
    g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))))
    b = 0.10667330 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))))
    return torch.from_numpy((np.clip(np.stack([r, g, b], 1), 0, 1) * 255).astype(np.uint8))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ffmpeg', required=True)
    ap.add_argument('--input', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--max-frames', type=int, default=0)
    ap.add_argument('--crf', type=int, default=23)
    ap.add_argument('--preset', default='veryfast')
    ap.add_argument('--alpha', type=float, default=0.5)
    ap.add_argument('--encode-threads', type=int, default=0)
    ap.add_argument('--mode', choices=['jit', 'eager'], default='jit',
                    help='jit (default): the trunk up to layer4 through torch.jit.optimize_for_inference '
                         '(oneDNN convolutions); eager: the plain module with a forward hook on layer4, as '
                         'torch-cam does (Debian builds torch with a generic BLAS, so eager 1x1 convolutions '
                         'are slow there)')
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(2016)
    width, height, rate = probe_size(a.ffmpeg, a.input)

    model = torchvision.models.resnet50(weights=None).eval()
    feats = {}
    fc_w = model.fc.weight.detach()  # [1000, 2048]
    if a.mode == 'eager':
        model.layer4.register_forward_hook(lambda _m, _i, out: feats.__setitem__('f', out))
        run = model
    else:
        # The same network split at layer4: the trunk frozen and optimised (conv+bn folded, oneDNN
        # layouts), then GAP and fc in eager mode; the trunk's output is the hooked tensor of eager mode.
        trunk = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool,
                                    model.layer1, model.layer2, model.layer3, model.layer4).eval()
        with torch.no_grad():
            trunk = torch.jit.optimize_for_inference(torch.jit.script(trunk))

        def run(x):
            f = trunk(x)
            feats['f'] = f
            return model.fc(torch.flatten(model.avgpool(f), 1))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    lut = turbo_lut()

    dec_cmd = [a.ffmpeg, '-hide_banner', '-loglevel', 'error', '-nostdin', '-i', a.input,
               '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']
    if a.max_frames:
        dec_cmd[-5:-5] = ['-frames:v', str(a.max_frames)]
    enc_cmd = [a.ffmpeg, '-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
               '-video_size', f'{width}x{height}', '-framerate', rate, '-i', 'pipe:0',
               '-c:v', 'libx264', '-preset', a.preset, '-crf', str(a.crf), '-pix_fmt', 'yuv420p',
               '-threads', str(a.encode_threads), a.out]
    # Two untimed passes: the TorchScript executor profiles and fuses on its first calls.
    with torch.inference_mode():
        for _ in range(2):
            run(torch.zeros(1, 3, 224, 224))
    frame_bytes = width * height * 3
    t = {'decode': 0.0, 'preprocess': 0.0, 'forward': 0.0, 'cam': 0.0, 'render': 0.0, 'encode': 0.0}
    n = 0
    started = time.perf_counter()
    dec = subprocess.Popen(dec_cmd, stdout=subprocess.PIPE)
    enc = subprocess.Popen(enc_cmd, stdin=subprocess.PIPE)
    with torch.inference_mode():
        while True:
            t0 = time.perf_counter()
            buf = dec.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            frame = torch.frombuffer(bytearray(buf), dtype=torch.uint8).view(height, width, 3)
            t1 = time.perf_counter()
            x = frame.permute(2, 0, 1).unsqueeze(0).float().div_(255)
            x = F.interpolate(x, size=(224, 224), mode='bilinear', align_corners=False)
            x = (x - mean) / std
            t2 = time.perf_counter()
            logits = run(x)
            t3 = time.perf_counter()
            c = int(logits[0].argmax())
            f = feats['f'][0]  # [2048, 7, 7]
            cam = torch.einsum('k,khw->hw', fc_w[c], f)  # M_c = sum_k w_k^c f_k
            cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-8)
            t4 = time.perf_counter()
            up = F.interpolate(cam[None, None], size=(height, width), mode='bilinear', align_corners=False)[0, 0]
            heat = lut[(up * 255).to(torch.uint8).long()]  # [H, W, 3]
            out = (frame.float() * (1 - a.alpha) + heat.float() * a.alpha).to(torch.uint8)
            t5 = time.perf_counter()
            enc.stdin.write(out.numpy().tobytes())
            t6 = time.perf_counter()
            t['decode'] += t1 - t0
            t['preprocess'] += t2 - t1
            t['forward'] += t3 - t2
            t['cam'] += t4 - t3
            t['render'] += t5 - t4
            t['encode'] += t6 - t5
            n += 1
    dec.stdout.close()
    dec.wait()
    enc.stdin.close()
    rc = enc.wait()
    elapsed = time.perf_counter() - started
    if rc != 0 or n == 0:
        sys.exit(f'torch_cam.py: encoder exited {rc} after {n} frames')
    print(json.dumps({
        'peer': 'torch', 'torch': torch.__version__, 'torchvision': torchvision.__version__,
        'threads': torch.get_num_threads(), 'mode': a.mode, 'frames': n, 'width': width, 'height': height,
        'elapsedMs': elapsed * 1000, 'fps': n / elapsed,
        'msPerFrame': {k: v * 1000 / n for k, v in t.items()},
    }))


if __name__ == '__main__':
    main()
