"""Benchmarks a round's pseudo-labelling pass against plain inference.

    python tools/benchmark/pseudo_label_pass.py --device cuda \\
        --height 1024 --width 2048 --num-images 20 --out benchmarks/x.json

On the same images (random, written as a Cityscapes-style folder) and the
same segmentor, it times

* ``inference``: MMSeg's plain prediction (no value head) over the folder;
* ``pseudo_label_pass``: what a Cal-SFDA round does before training -- the
  value head's BN warm-up, ECE estimates, per-class histograms and
  thresholds (pass 1), pseudo-labels and atomic PNG writes (pass 2);

and reports ``pseudo_label_pass_vs_inference``. The pass reads the images
twice (thresholds need the whole set before any label), so its floor is
about 2x inference plus the PNG writes.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from report import (  # noqa: E402
    environment,
    stage_config,
    timed,
    write_result,
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--depth', type=int, default=101)
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--num-images', type=int, default=20)
    parser.add_argument('--warmup-batches', type=int, default=5)
    parser.add_argument('--out', help='JSON file to write')
    return parser.parse_args()


def write_images(root: str, args) -> str:
    img_dir = osp.join(root, 'leftImg8bit', 'train')
    os.makedirs(osp.join(img_dir, 'bench'))
    import mmcv
    rng = np.random.default_rng(0)
    for i in range(args.num_images):
        img = rng.integers(0, 255, (args.height, args.width, 3), np.uint8)
        mmcv.imwrite(img, osp.join(img_dir, 'bench',
                                   f'bench_000000_{i:06d}_leftImg8bit.png'))
    return img_dir


def build(args, root: str):
    from mmengine.runner import Runner
    from mmseg.registry import MODELS
    cfg = stage_config('deeplabv2_gta2cs.py', args.depth)
    scale = (args.width // 2, args.height // 2)  # evaluation resolution
    loader_cfg = cfg.pseudo_label_dataloader
    loader_cfg.dataset.data_root = root
    loader_cfg.dataset.pipeline[1].scale = scale
    loader_cfg.num_workers = min(8, os.cpu_count() or 1)  # PNG decoding
    loader = Runner.build_dataloader(loader_cfg)
    model = MODELS.build(cfg.model).to(args.device).eval()
    plain_cfg = cfg.model.copy()
    plain_cfg.value_head = None
    plain_cfg.stage = 'source'
    plain = MODELS.build(plain_cfg).to(args.device).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    labeler_cfg = cfg.custom_hooks[0].pseudo_labeler
    return model, plain, loader, labeler_cfg


def measure(args) -> dict:
    """Times plain inference and the pass on the same generated images."""
    from mmseg.registry import TASK_UTILS
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401
    from mmseg_calsfda.engine import warmup_bn_stats
    from mmseg_calsfda.pseudo_label import run_pseudo_label_pass
    register_all_modules()
    with tempfile.TemporaryDirectory() as root:
        img_dir = write_images(root, args)
        model, plain, loader, labeler_cfg = build(args, root)
        labeler = TASK_UTILS.build(dict(labeler_cfg, num_classes=19))

        def inference():
            with torch.no_grad():
                for batch in loader:
                    plain.test_step(batch)

        def pseudo_label_pass(round_idx=[0]):
            warmup_bn_stats(model, loader, args.warmup_batches)
            run_pseudo_label_pass(model, loader, labeler, round_idx[0],
                                  osp.join(root, 'pl'), img_dir,
                                  '_leftImg8bit.png')
            round_idx[0] += 1  # a new round each call: nothing is reused

        inference()  # warm-up: allocator, cudnn
        t_plain = timed(inference, args.device, reps=3)
        t_pass = timed(pseudo_label_pass, args.device, reps=3)
        last = last_round(osp.join(root, 'pl'))
    return dict(depth=args.depth, image_size=[args.height, args.width],
                num_images=args.num_images, inference_s=t_plain,
                pseudo_label_pass_s=t_pass,
                pseudo_label_pass_vs_inference=t_pass / t_plain, **last)


def last_round(out_root: str) -> dict:
    """Size of the last round's label PNGs, the single-thread time to
    write one (labels of an untrained model are noisy: a worst case), and
    the time the last pass spent in its halves (thresholds, labels)."""
    from mmseg_calsfda.fileio import write_png_atomic
    last = max(d for d in os.listdir(out_root) if d.startswith('round_'))
    paths = sorted(glob.glob(osp.join(out_root, last, '**', '*.png'),
                             recursive=True))
    labels = [np.array(Image.open(p)) for p in paths]
    sizes = [osp.getsize(p) for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'x.png')
        t_write = timed(
            lambda: [write_png_atomic(label, out) for label in labels], 'cpu')
    with open(osp.join(out_root, last, 'summary.json')) as f:
        seconds = json.load(f)['seconds']  # the pass's two halves
    return dict(label_png_kib=sum(sizes) / len(sizes) / 1024,
                png_write_s_per_image=t_write / len(labels),
                last_pass_thresholds_s=seconds['thresholds'],
                last_pass_labels_s=seconds['labels'])


def main():
    args = parse_args()
    write_result(dict(environment=environment(args.device), **measure(args)),
                 args.out)


if __name__ == '__main__':
    main()
