"""Label-free calibration check of a deployed model on a folder of images.

    python tools/estimate_ece.py CONFIG CHECKPOINT IMG_DIR \\
        [--warmup-iters 50] [--out estimates.csv|.json] [--skip-bad]

The model's ECE value head (Cal-SFDA stage 2) estimates each image's
class-level expected calibration error -- no labels needed. Its BatchNorm
statistics are first re-estimated on the first ``--warmup-iters`` batches of
the folder (0 keeps the source statistics). Prints the mean and, with
``--out``, writes one row per image (CSV, or JSON when the name ends in
``.json``).
"""
import argparse
import csv
import os
import os.path as osp
import sys
from typing import Iterator, List

import numpy as np
import torch

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Estimate the calibration error (ECE) of a segmentation '
        'model on unlabelled images.')
    parser.add_argument('config', help='config of the model (any stage)')
    parser.add_argument('checkpoint', help='checkpoint with a value head')
    parser.add_argument('img_dir', help='folder of images (searched '
                        'recursively)')
    parser.add_argument('--warmup-iters', type=int, default=50,
                        help='batches for the BatchNorm warm-up (0: none)')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--out', help='write per-image estimates (.csv or '
                        '.json)')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip unreadable images (listed) instead of '
                        'stopping')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    return parser.parse_args()


def list_images(img_dir: str) -> List[str]:
    """Image files under ``img_dir``, sorted; errors name the folder."""
    if not osp.isdir(img_dir):
        sys.exit(f'error: image folder {img_dir!r} does not exist')
    files = sorted(
        osp.join(root, name) for root, _, names in os.walk(img_dir)
        for name in names if name.lower().endswith(IMG_EXTENSIONS))
    if not files:
        sys.exit(f'error: no images ({", ".join(IMG_EXTENSIONS)}) under '
                 f'{img_dir!r}')
    return files


def load_images(files: List[str], skip_bad: bool, bad: List[str]) -> Iterator:
    """Yields ``(path, RGB/BGR array)``; unreadable files stop the run or,
    with ``skip_bad``, are recorded in ``bad``."""
    import mmcv
    for path in files:
        try:
            img = mmcv.imread(path)
        except Exception:  # noqa: BLE001 - any decoder failure is "bad"
            img = None
        if img is None:
            if not skip_bad:
                sys.exit(f'error: cannot read image {path!r} (use --skip-bad '
                         'to skip unreadable files)')
            bad.append(path)
            continue
        yield path, img


def build_model(args):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401
    from mmseg_calsfda.models.segmentors import has_value_head
    register_all_modules()
    if not osp.isfile(args.config):
        sys.exit(f'error: config file {args.config!r} does not exist')
    if not osp.isfile(args.checkpoint):
        sys.exit(f'error: checkpoint {args.checkpoint!r} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.model.pretrained = None
    cfg.model.stage = 'target'
    if cfg.model.get('value_head') is None:
        sys.exit(f'error: {args.config!r} defines no value_head; use the '
                 'stage-2 ("value") config the checkpoint was trained with')
    model = MODELS.build(cfg.model)
    ckpt = load_checkpoint(model, args.checkpoint, map_location='cpu',
                           logger='silent')
    if not has_value_head(ckpt):
        sys.exit(f'error: {args.checkpoint!r} has no value head weights; '
                 'train one with a stage-2 config (e.g. '
                 'configs/calsfda/deeplabv2_r101_gta5_value.py)')
    return cfg, model.to(args.device).eval()


def make_pipeline(cfg):
    """The config's test pipeline without annotations."""
    from mmcv.transforms import Compose
    steps = [dict(type='LoadImageFromNDArray')] + [
        step for step in cfg.test_pipeline
        if step['type'] not in ('LoadImageFromFile', 'LoadAnnotations')
    ]
    return Compose(steps)


def batches(items, pipeline, batch_size: int) -> Iterator[tuple]:
    """Groups ``(path, img)`` into model batches."""
    paths, data = [], []
    for path, img in items:
        result = pipeline(dict(img=img, img_path=path))
        paths.append(path)
        data.append(result)
        if len(data) == batch_size:
            yield paths, _collate(data)
            paths, data = [], []
    if data:
        yield paths, _collate(data)


def _collate(data: list) -> dict:
    return dict(inputs=[d['inputs'] for d in data],
                data_samples=[d['data_samples'] for d in data])


def write(out: str, rows: List[dict]) -> None:
    from mmseg_calsfda.fileio import write_json_atomic
    if out.endswith('.json'):
        write_json_atomic(rows, out)
        return
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    tmp = out + '.tmp'
    with open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['image', 'est_ece'])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out)


def main():
    args = parse_args()
    files = list_images(args.img_dir)
    cfg, model = build_model(args)
    pipeline = make_pipeline(cfg)
    from mmengine.utils import ProgressBar

    from mmseg_calsfda.engine import warmup_bn_stats
    bad: List[str] = []
    if args.warmup_iters > 0:
        warm = batches(load_images(files, args.skip_bad, bad), pipeline,
                       args.batch_size)
        warmup_bn_stats(model, (b for _, b in warm), args.warmup_iters)
        bad.clear()
    rows = []
    progress = ProgressBar(len(files))
    with torch.no_grad():
        for paths, batch in batches(
                load_images(files, args.skip_bad, bad), pipeline,
                args.batch_size):
            inputs = model.data_preprocessor(batch, False)['inputs']
            estimates = model.estimate_ece(inputs).float().cpu().tolist()
            for path, est in zip(paths, estimates):
                rows.append(dict(image=osp.relpath(path, args.img_dir),
                                 est_ece=round(est, 6)))
                progress.update()
    print()
    if bad:
        print(f'skipped {len(bad)} unreadable file(s): ' + ', '.join(bad))
    if not rows:
        sys.exit(f'error: none of the images under {args.img_dir!r} could '
                 'be read')
    mean = float(np.mean([r['est_ece'] for r in rows]))
    print(f'estimated ECE over {len(rows)} images: mean {mean * 100:.2f}% '
          f'(BN warm-up: {args.warmup_iters} batches)')
    if args.out:
        write(args.out, rows)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
