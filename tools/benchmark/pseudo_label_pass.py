"""Benchmarks a round's pseudo-labelling pass against plain inference.

    python tools/benchmark/pseudo_label_pass.py --device cuda \\
        --height 1024 --width 2048 --num-images 20 --out benchmarks/x.json

On the same images (random, written as a Cityscapes-style folder) and the
same segmentor, interleaved (A B C A B C ...), it times

* ``inference``: MMSeg's plain prediction (no value head) over the folder;
* ``pseudo_label_pass``: the pass as the issue defines it -- ECE estimates,
  per-class histograms and exact thresholds (first half: the model runs
  once and keeps each pixel's top-1, in memory where it fits; then a
  second look at that cache), pseudo-labels and atomic PNG writes (second
  half, from that cache);
* ``pseudo_label_pass_disk``: the same with the cache on disk, as on a GPU
  too small to hold it;
* ``bn_warmup``: the BN warm-up a round runs before the pass
  (``--warmup-batches`` batches; a config runs 50 on ~3000 images);
* ``inference_pinned`` and ``pseudo_label_pass_pinned``: the first two
  with the loader's batches in pinned memory (on CUDA) and the data
  preprocessors' host-to-device copies non-blocking, so that the host can
  queue the next image while the GPU runs -- a candidate fix measured
  beside what it would change,

and reports ``pseudo_label_pass_vs_inference`` (and ``..._disk_...``),
warm-up included ``round_start_vs_inference``, and
``pinned_inference_vs_inference`` / ``pseudo_label_pass_pinned_vs_inference``
(both pinned).
"""
import argparse
import glob
import os
import os.path as osp
import tempfile
from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image

from report import (  # this script's folder is importable
    environment,
    interleaved,
    stage_config,
    timed,
    write_profile,
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
    parser.add_argument('--warmup-batches', type=int, default=2)
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--out', help='JSON file to write')
    parser.add_argument('--profile', metavar='TXT',
                        help='also profile one more pass and write the '
                        'busiest operators (CPU and CUDA) to this file')
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
    # the warm-up stops after a few batches; on the pass's own loader the
    # pass's next epoch would first wait for the warm-up's abandoned
    # prefetches (num_workers x prefetch_factor images; a round at scale
    # pays that once per ~3000 images), so the warm-up gets its own loader
    warmup_loader = Runner.build_dataloader(loader_cfg)
    pinned_loader = Runner.build_dataloader(
        dict(loader_cfg, pin_memory=args.device.startswith('cuda')))
    model = MODELS.build(cfg.model).to(args.device).eval()
    plain_cfg = cfg.model.copy()
    plain_cfg.value_head = None
    plain_cfg.stage = 'source'
    plain = MODELS.build(plain_cfg).to(args.device).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    labeler_cfg = cfg.custom_hooks[0].pseudo_labeler
    loaders = dict(plain=loader, warmup=warmup_loader, pinned=pinned_loader)
    return model, plain, loaders, labeler_cfg


def measure(args, profile: Optional[str] = None) -> dict:
    """Times plain inference and the pass on the same generated images;
    with ``profile``, writes a profile of one more pass there."""
    from mmseg.registry import TASK_UTILS
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401
    from mmseg_calsfda.engine import warmup_bn_stats
    from mmseg_calsfda.pseudo_label import run_pseudo_label_pass
    from mmseg_calsfda.pseudo_label.pseudo_label_pass import round_dir
    register_all_modules()
    with tempfile.TemporaryDirectory() as root:
        img_dir = write_images(root, args)
        model, plain, loaders, labeler_cfg = build(args, root)
        labeler = TASK_UTILS.build(dict(labeler_cfg, num_classes=19))

        def inference(kind='plain'):
            with torch.no_grad():
                for batch in loaders[kind]:
                    plain.test_step(batch)

        def bn_warmup():
            warmup_bn_stats(model, loaders['warmup'], args.warmup_batches)

        pl_root, summaries = osp.join(root, 'pl'), []

        def pseudo_label_pass(place='auto', kind='plain'):
            # a new round each call: nothing is reused
            summaries.append(
                run_pseudo_label_pass(model, loaders[kind], labeler,
                                      len(summaries), pl_root, img_dir,
                                      '_leftImg8bit.png', place))

        def pinned(fn: Callable) -> Callable[[], None]:
            """``fn`` on the pinned loader, with non-blocking copies (an
            attribute: MMSeg's preprocessor takes no such argument)."""
            def run() -> None:
                nets = (model, plain)
                before = [net.data_preprocessor._non_blocking for net in nets]
                for net in nets:
                    net.data_preprocessor._non_blocking = True
                try:
                    fn(kind='pinned')
                finally:
                    for net, value in zip(nets, before):
                        net.data_preprocessor._non_blocking = value
            return run

        inference()  # warm-up: allocator, cudnn, loader workers
        pinned(inference)()  # the pinned loader's workers
        bn_warmup()  # the pass runs with target statistics, as in a round
        # the plain pass runs last: its round is the one reported below
        seconds = interleaved(
            dict(inference=inference, inference_pinned=pinned(inference),
                 bn_warmup=bn_warmup,
                 pseudo_label_pass_disk=lambda: pseudo_label_pass('disk'),
                 pseudo_label_pass_pinned=pinned(pseudo_label_pass),
                 pseudo_label_pass=pseudo_label_pass),
            args.device, args.reps)
        last = last_round(round_dir(pl_root, len(summaries) - 1),
                          summaries[-1])
        if profile:
            write_profile(pseudo_label_pass, args.device, profile)
    t_plain, t_pass = seconds['inference'], seconds['pseudo_label_pass']
    return dict(depth=args.depth, image_size=[args.height, args.width],
                num_images=args.num_images,
                warmup_batches=args.warmup_batches,
                inference_s=t_plain, pseudo_label_pass_s=t_pass,
                bn_warmup_s=seconds['bn_warmup'],
                pseudo_label_pass_vs_inference=t_pass / t_plain,
                pseudo_label_pass_disk_s=seconds['pseudo_label_pass_disk'],
                pseudo_label_pass_disk_vs_inference=seconds[
                    'pseudo_label_pass_disk'] / t_plain,
                round_start_vs_inference=(t_pass + seconds['bn_warmup']) /
                t_plain,
                inference_pinned_s=seconds['inference_pinned'],
                pseudo_label_pass_pinned_s=seconds['pseudo_label_pass_pinned'],
                pinned_inference_vs_inference=seconds['inference_pinned'] /
                t_plain,
                pseudo_label_pass_pinned_vs_inference=seconds[
                    'pseudo_label_pass_pinned'] / seconds['inference_pinned'],
                **last)


def last_round(folder: str, summary: dict) -> dict:
    """Size of a round's label PNGs (in ``folder``), the single-thread time
    to write one, ours and Pillow's (labels of an untrained model are noisy:
    a worst case), and the time its pass spent in its halves (thresholds,
    labels; from its ``summary``)."""
    from mmseg_calsfda.fileio import write_png_atomic
    paths = sorted(glob.glob(osp.join(folder, '**', '*.png'),
                             recursive=True))
    labels = [np.array(Image.open(p)) for p in paths]
    sizes = [osp.getsize(p) for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'x.png')
        t_write = timed(
            lambda: [write_png_atomic(label, out) for label in labels], 'cpu')
        t_pillow = timed(lambda: [
            Image.fromarray(label).save(out, format='PNG', compress_level=1)
            for label in labels
        ], 'cpu')
    seconds = summary['seconds']
    return dict(top1_cache=summary['top1_cache'],
                label_png_kib=sum(sizes) / len(sizes) / 1024,
                png_write_s_per_image=t_write / len(labels),
                pillow_png_write_s_per_image=t_pillow / len(labels),
                last_pass_thresholds_s=seconds['thresholds'],
                last_pass_labels_s=seconds['labels'])


def main():
    args = parse_args()
    write_result(
        dict(environment=environment(args.device),
             **measure(args, args.profile)), args.out)


if __name__ == '__main__':
    main()
