"""Segment an image or a folder with a Cal-SFDA model, and say how well
calibrated each prediction is estimated to be.

    python tools/image_demo.py CONFIG CHECKPOINT IMAGE_OR_DIR \\
        [--out-dir work_dirs/image_demo] [--opacity 0.5] [--skip-bad]

For each image, writes ``OUT_DIR/<image path>.png``: the prediction over the
image, and the value head's estimated ECE in percent in its top-left corner;
and ``OUT_DIR/est_ece.csv``, one row per image file: ``image``,
``est_ece_percent``, ``overlay`` (the PNG, relative to OUT_DIR) and
``status`` (``ok``, or ``unreadable`` for a file skipped with
``--skip-bad``). The model runs through
:class:`mmseg_calsfda.apis.CalSFDAInferencer` (MMSeg's ``MMSegInferencer``)
with the checkpoint's BatchNorm statistics, one image at a time;
``tools/estimate_ece.py`` re-estimates the value head's statistics on a
folder first (with ``--warmup-iters 0`` it gives the numbers of this demo).
"""
import argparse
import contextlib
import csv
import io
import os
import os.path as osp
from typing import List, Optional

import numpy as np
from estimate_ece import list_images, load_images  # this script's folder

from mmseg_calsfda.cli import fail, load_config, quiet_known_warnings

#: The per-image list this demo writes into ``--out-dir``.
CSV_NAME = 'est_ece.csv'


def parse_args():
    parser = argparse.ArgumentParser(
        description='Segment images with a Cal-SFDA model and estimate each '
        "prediction's calibration error (ECE, in percent).")
    parser.add_argument('config', help='config of the model (a stage-2 or '
                        'stage-3 config: it has a value head)')
    parser.add_argument('checkpoint', help='checkpoint with a value head')
    parser.add_argument('input', help='an image, or a folder of images '
                        '(searched recursively)')
    parser.add_argument('--out-dir', default='work_dirs/image_demo',
                        help='where the overlays and est_ece.csv go '
                        '(default: %(default)s)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the prediction over the image '
                        '(default: %(default)s)')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip unreadable images (listed, and in the CSV '
                        "with status 'unreadable') instead of stopping")
    parser.add_argument('--device', default=None,
                        help='default: cuda if available, else cpu')
    args = parser.parse_args()
    if not 0 <= args.opacity <= 1:
        parser.error(f'--opacity must lie in [0, 1], got {args.opacity}')
    return args


def input_files(path: str) -> List[str]:
    """The image, or the images under a folder (sorted)."""
    if osp.isfile(path):
        return [path]
    return list_images(path)


def build_inferencer(args):
    """A :class:`CalSFDAInferencer` for a config with a value head; bad
    input exits with one line."""
    import mmseg_calsfda  # noqa: F401  registers the plugin's modules
    from mmseg_calsfda.apis import CalSFDAInferencer, MissingValueHeadError
    from mmseg_calsfda.cli import BUILD_ERRORS, config_errors
    cfg = load_config(args.config)
    if not cfg.model.get('value_head'):
        fail(f'{args.config!r} defines no value_head; use the stage-2 '
             '("value") or stage-3 config the checkpoint was trained with')
    if not osp.isfile(args.checkpoint):
        fail(f'checkpoint {args.checkpoint!r} does not exist')
    cfg.model.pretrained = None
    # the overlays are written here, not through the visualizer's backends
    cfg.visualizer.vis_backends = None
    # MMEngine's messages while building (checkpoint loading, registry
    # scopes) say nothing a user acts on: errors only
    from mmengine.logging import MMLogger
    MMLogger.get_instance('image_demo', log_level='ERROR')
    with config_errors(args.config, BUILD_ERRORS):
        try:
            # MMEngine prints the checkpoint it loads
            with contextlib.redirect_stdout(io.StringIO()):
                inferencer = CalSFDAInferencer(
                    cfg, args.checkpoint, device=args.device)
        except MissingValueHeadError as e:
            fail(f'{args.checkpoint!r}: {e}')
    inferencer.show_progress = False
    return inferencer


def label_estimate(img: np.ndarray, estimate: float) -> np.ndarray:
    """``img`` (RGB) with ``est. ECE <estimate> %`` in its top-left corner,
    white on a dark box, scaled to the image's width."""
    import cv2
    img = np.ascontiguousarray(img)
    text = f'est. ECE {estimate:.1f} %'
    scale = max(0.3, img.shape[1] / 1600)
    thickness = max(1, round(scale * 2))
    (width, height), baseline = cv2.getTextSize(
        text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, height // 3)
    cv2.rectangle(img, (0, 0), (width + 2 * pad, height + baseline + 2 * pad),
                  (0, 0, 0), thickness=-1)
    cv2.putText(img, text, (pad, pad + height), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return img


def overlay_name(path: str, root: Optional[str]) -> str:
    """The overlay's file name under the output folder: the image's path
    under the input folder, as a PNG."""
    rel = osp.relpath(path, root) if root else osp.basename(path)
    return osp.splitext(rel)[0] + '.png'


def write_csv(path: str, rows: List[dict]) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(
            f, fieldnames=['image', 'est_ece_percent', 'overlay', 'status'])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def main():
    quiet_known_warnings()
    args = parse_args()
    if not osp.exists(args.input):
        fail(f'input {args.input!r} does not exist')
    files = input_files(args.input)
    root = args.input if osp.isdir(args.input) else None
    inferencer = build_inferencer(args)
    import mmcv
    from mmengine.utils import ProgressBar

    from mmseg_calsfda.apis import EST_ECE_PERCENT
    os.makedirs(args.out_dir, exist_ok=True)
    rows, bad = {}, []
    progress = ProgressBar(len(files))
    for path, _ in load_images(files, args.skip_bad, bad, progress):
        result = inferencer(path, return_vis=True, opacity=args.opacity,
                            with_labels=False)
        estimate = result[EST_ECE_PERCENT]
        name = overlay_name(path, root)
        mmcv.imwrite(label_estimate(result['visualization'], estimate)
                     [..., ::-1], osp.join(args.out_dir, name))
        rows[path] = dict(est_ece_percent=round(estimate, 4), overlay=name,
                          status='ok')
        progress.update()
    print()
    for path in bad:
        rows[path] = dict(est_ece_percent=None, overlay=None,
                          status='unreadable')
    if bad:
        print(f'skipped {len(bad)} unreadable file(s): ' + ', '.join(bad))
    table = [
        dict(image=osp.relpath(p, root) if root else osp.basename(p),
             **rows[p]) for p in files if p in rows
    ]
    csv_path = osp.join(args.out_dir, CSV_NAME)
    write_csv(csv_path, table)
    values = [r['est_ece_percent'] for r in table if r['status'] == 'ok']
    if not values:
        fail(f'none of the images under {args.input!r} could be read')
    print(f'estimated ECE over {len(values)} image(s): mean '
          f'{float(np.mean(values)):.2f} %')
    print(f'wrote {len(values)} overlay(s) and {csv_path} '
          f'({EST_ECE_PERCENT} per image) to {args.out_dir}')


if __name__ == '__main__':
    main()
