"""Label-free calibration check of a deployed model on a folder of images.

    python tools/estimate_ece.py CONFIG CHECKPOINT IMG_DIR \\
        [--warmup-iters 50] [--out estimates.csv|.json] [--skip-bad]

The model's ECE value head (Cal-SFDA stage 2) estimates each image's
class-level expected calibration error -- no labels needed. Its BatchNorm
statistics are first re-estimated on the first ``--warmup-iters`` batches of
the folder (0 keeps the source statistics). Prints the mean and, with
``--out``, writes one row per image file (CSV, or JSON when the name ends
in ``.json``): ``image``, ``est_ece_percent`` and ``status`` (``ok``, or
``unreadable`` for a file skipped with ``--skip-bad``, which has no
estimate). Estimates are in percent everywhere (``est_ece_percent``), as
the ECE of MMSeg-style metric tables. Images of different sizes are never
batched together (nor padded), so any ``--batch-size`` gives each image the
estimate it gets alone.
"""
import argparse
import csv
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from mmseg_calsfda.cli import (
    BUILD_ERRORS,
    config_errors,
    fail,
    load_config,
    quiet_known_warnings,
)

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
#: The per-image column of ``--out`` (CSV header, JSON key).
ESTIMATE_KEY = 'est_ece_percent'
#: Whether a file was estimated (``'ok'``) or skipped (``'unreadable'``).
STATUS_KEY = 'status'
#: OpenCV's log level "errors only" (``LOG_LEVEL_ERROR``).
OPENCV_LOG_ERROR = 2


def parse_args():
    parser = argparse.ArgumentParser(
        description='Estimate the calibration error (ECE) of a segmentation '
        'model on unlabelled images.')
    parser.add_argument('config', help='config of the model (any stage)')
    parser.add_argument('checkpoint', help='checkpoint with a value head')
    parser.add_argument('img_dir', help='folder of images (searched '
                        'recursively)')
    parser.add_argument('--warmup-iters', type=int, default=50,
                        help='batches for the BatchNorm warm-up, at most '
                        '(0: none; default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='images per batch (default: %(default)s)')
    parser.add_argument('--out', help='write per-image estimates (.csv or '
                        f'.json; column {ESTIMATE_KEY!r}, in percent, and '
                        f'{STATUS_KEY!r})')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip unreadable images (listed, and in --out '
                        "with status 'unreadable') instead of stopping")
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu', help='default: %(default)s')
    return parser.parse_args()


def list_images(img_dir: str) -> List[str]:
    """Image files under ``img_dir``, sorted; errors name the folder."""
    if not osp.isdir(img_dir):
        fail(f'image folder {img_dir!r} does not exist')
    files = sorted(
        osp.join(root, name) for root, _, names in os.walk(img_dir)
        for name in names if name.lower().endswith(IMG_EXTENSIONS))
    if not files:
        fail(f'no images ({", ".join(IMG_EXTENSIONS)}) under {img_dir!r}')
    return files


def load_images(files: List[str], skip_bad: bool, bad: List[str],
                progress=None) -> Iterator:
    """Yields ``(path, RGB/BGR array)``; unreadable files stop the run or,
    with ``skip_bad``, are recorded in ``bad`` (and counted on
    ``progress``, a ProgressBar over the files, if given)."""
    import mmcv

    # OpenCV's own "PNG input buffer is incomplete" lines say less than
    # the list of skipped files printed at the end
    quiet_opencv()
    for path in files:
        try:
            img = mmcv.imread(path)
        except Exception:  # noqa: BLE001 - any decoder failure is "bad"
            img = None
        if img is None:
            if not skip_bad:
                fail(f'cannot read image {path!r} (use --skip-bad to skip '
                     'unreadable files)')
            bad.append(path)
            if progress is not None:
                progress.update()
            continue
        yield path, img


def quiet_opencv() -> None:
    """Lets OpenCV log errors only, where this OpenCV lets us say so:
    ``cv2.setLogLevel`` (OpenCV 4) or ``cv2.utils.logging.setLogLevel``
    (OpenCV 5, which dropped the former); neither: its warnings stay."""
    import cv2
    set_level = getattr(cv2, 'setLogLevel', None)
    if set_level is None:
        logging = getattr(getattr(cv2, 'utils', None), 'logging', None)
        set_level = getattr(logging, 'setLogLevel', None)
    if set_level is not None:
        set_level(OPENCV_LOG_ERROR)


def build_model(args):
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401
    from mmseg_calsfda.models.segmentors import has_value_head
    register_all_modules()
    cfg = load_config(args.config)
    if not osp.isfile(args.checkpoint):
        fail(f'checkpoint {args.checkpoint!r} does not exist')
    cfg.model.pretrained = None
    cfg.model.stage = 'target'
    if cfg.model.get('value_head') is None:
        fail(f'{args.config!r} defines no value_head; use the stage-2 '
             '("value") config the checkpoint was trained with')
    with config_errors(args.config, BUILD_ERRORS):
        model = MODELS.build(cfg.model)
    ckpt = load_checkpoint(model, args.checkpoint, map_location='cpu',
                           logger='silent')
    if not has_value_head(ckpt):
        fail(f'{args.checkpoint!r} has no value head weights; train one '
             'with a stage-2 config (e.g. '
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
    """Groups ``(path, img)`` into model batches of images of one size.

    Images of a folder may differ in size (after the test pipeline too,
    e.g. a keep-ratio resize of another aspect ratio). A batch only holds
    images of one size, so none is padded and each estimate is the one
    the image gets alone: images wait, per size, until ``batch_size`` of
    that size are there; what is left goes out at the end. Batches thus
    leave in another order than the files come in.

    Yields:
        tuple: ``(paths, batch)``, the batch as a dataloader gives it.
    """
    pending: Dict[tuple, Tuple[list, list]] = {}
    for path, img in items:
        result = pipeline(dict(img=img, img_path=path))
        size = tuple(result['inputs'].shape)
        paths, data = pending.setdefault(size, ([], []))
        paths.append(path)
        data.append(result)
        if len(data) == batch_size:
            del pending[size]
            yield paths, _collate(data)
    for paths, data in pending.values():
        yield paths, _collate(data)


def _collate(data: list) -> dict:
    return dict(inputs=[d['inputs'] for d in data],
                data_samples=[d['data_samples'] for d in data])


def output_rows(files: List[str], img_dir: str, estimates: Dict[str, float],
                bad: List[str]) -> List[dict]:
    """One row per file, in the folder's order: its estimate in percent
    (``status`` ``'ok'``) or, skipped with ``--skip-bad``, none
    (``'unreadable'``)."""
    rows = []
    for path in files:
        if path in estimates:
            row = {ESTIMATE_KEY: round(estimates[path] * 100, 4),
                   STATUS_KEY: 'ok'}
        elif path in bad:
            row = {ESTIMATE_KEY: None, STATUS_KEY: 'unreadable'}
        else:
            continue
        rows.append({'image': osp.relpath(path, img_dir), **row})
    return rows


def write(out: str, rows: List[dict]) -> None:
    """Writes ``rows`` as CSV (an empty cell where there is no estimate)
    or, for a ``.json`` name, as a JSON list (``null``)."""
    from mmseg_calsfda.fileio import write_json_atomic
    if out.endswith('.json'):
        write_json_atomic(rows, out)
        return
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    tmp = out + '.tmp'
    with open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(
            f, fieldnames=['image', ESTIMATE_KEY, STATUS_KEY])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out)


def main():
    quiet_known_warnings()
    args = parse_args()
    files = list_images(args.img_dir)
    cfg, model = build_model(args)
    pipeline = make_pipeline(cfg)
    from mmengine.utils import ProgressBar

    from mmseg_calsfda.engine import warmup_bn_stats
    bad: List[str] = []
    warmup = None
    if args.warmup_iters > 0:
        warm = batches(load_images(files, args.skip_bad, bad), pipeline,
                       args.batch_size)
        warmup = warmup_bn_stats(model, (b for _, b in warm),
                                 args.warmup_iters)
        bad.clear()
    estimates: Dict[str, float] = {}
    print(f'estimating the ECE of {len(files)} image file(s)')
    progress = ProgressBar(len(files))
    with torch.no_grad():
        for paths, batch in batches(
                load_images(files, args.skip_bad, bad, progress), pipeline,
                args.batch_size):
            inputs = model.data_preprocessor(batch, False)['inputs']
            batch_estimates = model.estimate_ece(inputs).float().cpu()
            for path, est in zip(paths, batch_estimates.tolist()):
                estimates[path] = est
                progress.update()
    print()
    if bad:
        print(f'skipped {len(bad)} unreadable file(s): ' + ', '.join(bad))
    if not estimates:
        fail(f'none of the images under {args.img_dir!r} could be read')
    print(describe_warmup(warmup, args.warmup_iters))
    rows = output_rows(files, args.img_dir, estimates, bad)
    values = [r[ESTIMATE_KEY] for r in rows if r[STATUS_KEY] == 'ok']
    mean = float(np.mean(values))
    skipped = f' ({len(bad)} unreadable file(s) skipped)' if bad else ''
    print(f'estimated ECE over {len(values)} images: mean {mean:.2f} %'
          + skipped)
    if args.out:
        write(args.out, rows)
        listed = ', unreadable ones with status unreadable' if bad else ''
        print(f'wrote {args.out} (one row per file, {ESTIMATE_KEY}'
              f'{listed})')


def describe_warmup(stats: Optional[dict], asked: int) -> str:
    """What the BatchNorm warm-up did, from :func:`warmup_bn_stats`'s
    ``stats`` (None: skipped with ``--warmup-iters 0``)."""
    if stats is None:
        return 'BN warm-up: none (--warmup-iters 0), source statistics kept'
    line = (f'BN warm-up: {stats["batches"]} batch(es), {stats["images"]} '
            'image(s)')
    if stats['batches'] < asked:
        line += f' (--warmup-iters {asked}: the folder has no more)'
    return line


if __name__ == '__main__':
    main()
