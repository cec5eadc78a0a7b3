"""Label conversion for GTA5 and SYNTHIA: raw ids -> ``*_labelTrainIds.png``.

Used by ``tools/dataset_converters/gta5.py`` and ``synthia.py``: every label
file is read, checked against its dataset's id range, mapped to train ids
(unlisted ids -> 255) and written atomically beside the original; per-class
pixel and image counts are gathered for a class-statistics JSON, and the
``train.txt``/``val.txt`` split lists the dataset classes read are written.
"""
import os
import os.path as osp
import sys
from dataclasses import dataclass
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..fileio import write_json_atomic, write_png_atomic
from .label_maps import (
    CITYSCAPES_IDS,
    IGNORE_INDEX,
    SYNTHIA_IDS,
    id_to_train_id_lut,
)

TRAIN_ID_SUFFIX = '_labelTrainIds.png'


class BadLabelError(ValueError):
    """A label file that cannot be converted; the message names it."""


@dataclass(frozen=True)
class LabelFormat:
    """How a dataset stores labels.

    Attributes:
        ids (tuple[int]): ``ids[train_id]`` is the raw id of that class.
        max_id (int): Largest raw id the dataset uses (larger is an error).
        channel (int, optional): Channel holding the id in a multi-channel
            label, as OpenCV returns it (BGR order), or None for one channel.
    """
    ids: Tuple[int, ...]
    max_id: int
    channel: Optional[int] = None


# GTA5 labels are Cityscapes label ids, 0 (unlabeled) to 33 (bicycle).
GTA5_FORMAT = LabelFormat(ids=CITYSCAPES_IDS, max_id=33)
# SYNTHIA-RAND-CITYSCAPES: 16-bit 3-channel PNGs, class id 0..22 in the first
# (R) channel -- index 2 as OpenCV reads BGR.
SYNTHIA_FORMAT = LabelFormat(ids=SYNTHIA_IDS, max_id=22, channel=2)


def _read_label(path: str, fmt: LabelFormat) -> np.ndarray:
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise BadLabelError(f'cannot read label {path!r}')
    if label.ndim == 3:
        if fmt.channel is None:
            raise BadLabelError(f'{path!r} has {label.shape[2]} channels, '
                                'expected a single-channel id map')
        label = label[..., fmt.channel]
    return label


def convert_label(path: str, fmt: LabelFormat,
                  image_path: Optional[str] = None) -> np.ndarray:
    """Converts one label file and writes ``<stem>_labelTrainIds.png``.

    Args:
        path (str): The raw label file.
        fmt (LabelFormat): The dataset's label format.
        image_path (str, optional): Its image; must exist if given.

    Returns:
        np.ndarray: ``(num_classes, 2)`` int64: pixels of each class and
        whether the class occurs (0/1).

    Raises:
        BadLabelError: Missing image, unreadable label or ids outside the
            dataset's range; the message names the file.
    """
    if image_path is not None and not osp.isfile(image_path):
        raise BadLabelError(f'label {path!r} has no image {image_path!r}')
    label = _read_label(path, fmt)
    if int(label.max(initial=0)) > fmt.max_id:
        bad = sorted(set(np.unique(label[label > fmt.max_id]).tolist()))[:5]
        raise BadLabelError(f'{path!r} holds ids {bad} outside the id map '
                            f'(0..{fmt.max_id})')
    lut = id_to_train_id_lut(fmt.ids, size=fmt.max_id + 1)
    train_ids = lut[label]
    write_png_atomic(train_ids, path[:-len('.png')] + TRAIN_ID_SUFFIX)
    counts = np.bincount(train_ids[train_ids != IGNORE_INDEX].ravel(),
                         minlength=len(fmt.ids))
    return np.stack([counts, counts > 0], axis=1).astype(np.int64)


def _convert_one(item: Tuple[str, str], fmt: LabelFormat,
                 skip_bad: bool):
    label_path, image_path = item
    try:
        return convert_label(label_path, fmt, image_path)
    except BadLabelError as e:
        if not skip_bad:
            raise
        return dict(file=label_path, error=str(e))


def convert_dataset(pairs: Sequence[Tuple[str, str]],
                    fmt: LabelFormat,
                    classes: Sequence[str],
                    nproc: int = 1,
                    skip_bad: bool = False) -> Tuple[Dict, List[Dict]]:
    """Converts every ``(label, image)`` pair, in parallel with a progress
    bar.

    Returns:
        tuple[dict, list[dict]]: Class statistics (pixels and images per
        class) and the skipped bad files (``file``, ``error``).
    """
    from mmengine.utils import track_parallel_progress, track_progress
    work = partial(_convert_one, fmt=fmt, skip_bad=skip_bad)
    # the bar goes where stdout is now (mmengine's default is the stdout of
    # import time): a tool that sends stdout to a log sends the bar there
    if nproc > 1:
        results = track_parallel_progress(work, list(pairs), nproc,
                                          file=sys.stdout)
    else:
        results = track_progress(work, list(pairs), file=sys.stdout)
    bad = [r for r in results if isinstance(r, dict)]
    counts = sum((r for r in results if not isinstance(r, dict)),
                 np.zeros((len(classes), 2), np.int64))
    stats = dict(
        num_images=len(results) - len(bad),
        pixels={c: int(n) for c, n in zip(classes, counts[:, 0])},
        images={c: int(n) for c, n in zip(classes, counts[:, 1])})
    return stats, bad


def write_splits(root: str, stems: Sequence[str], val_size: int,
                 seed: int = 0) -> Dict[str, int]:
    """Writes ``train.txt`` and ``val.txt`` (a seeded random held-out
    labelled split of ``val_size`` stems)."""
    stems = sorted(stems)
    if not 0 <= val_size < len(stems):
        raise ValueError(f'val_size={val_size} must be in [0, {len(stems)})')
    rng = np.random.default_rng(seed)
    val = set(rng.choice(len(stems), size=val_size, replace=False).tolist())
    splits = dict(train=[s for i, s in enumerate(stems) if i not in val],
                  val=[s for i, s in enumerate(stems) if i in val])
    for name, items in splits.items():
        with open(osp.join(root, f'{name}.txt'), 'w') as f:
            f.write(''.join(f'{s}\n' for s in items))
    return {name: len(items) for name, items in splits.items()}


def convert_tree(root: str,
                 image_subdir: str,
                 label_subdir: str,
                 fmt: LabelFormat,
                 classes: Sequence[str],
                 nproc: int = 1,
                 skip_bad: bool = False,
                 val_size: int = 500,
                 seed: int = 0,
                 resplit: bool = False) -> Dict:
    """Converts a dataset tree; writes split lists (unless both exist and
    not ``resplit``) and ``class_stats.json``.

    Returns:
        dict: The class statistics, with ``skipped`` bad files and ``split``
        sizes.

    Raises:
        FileNotFoundError: A missing folder or no labels, naming the path.
        BadLabelError: A bad file (without ``skip_bad``), naming it.
    """
    import glob
    label_dir = osp.join(root, label_subdir)
    image_dir = osp.join(root, image_subdir)
    for key, path in (('labels', label_dir), ('images', image_dir)):
        if not osp.isdir(path):
            raise FileNotFoundError(f'{key} folder {path!r} does not exist')
    labels = sorted(
        p for p in glob.glob(osp.join(label_dir, '*.png'))
        if not p.endswith(TRAIN_ID_SUFFIX))
    if not labels:
        raise FileNotFoundError(f'no label PNGs in {label_dir!r}')
    pairs = [(p, osp.join(image_dir, osp.basename(p))) for p in labels]
    stats, bad = convert_dataset(pairs, fmt, classes, nproc, skip_bad)
    bad_files = {b['file'] for b in bad}
    stems = [osp.basename(p)[:-len('.png')] for p, _ in pairs
             if p not in bad_files]
    have_splits = all(
        osp.isfile(osp.join(root, f'{n}.txt')) for n in ('train', 'val'))
    if resplit or not have_splits:
        stats['split'] = write_splits(root, stems,
                                      min(val_size, len(stems) - 1), seed)
    stats['skipped'] = bad
    write_json_atomic(stats, osp.join(root, 'class_stats.json'))
    return stats


def convert_cli(description: str, image_subdir: str, label_subdir: str,
                fmt: LabelFormat, classes: Sequence[str],
                argv: Optional[Sequence[str]] = None) -> None:
    """The command line shared by the GTA5 and SYNTHIA converters."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('root', help='dataset root (e.g. data/gta)')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--val-size', type=int, default=500,
                        help='held-out labelled source images (val.txt)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--resplit', action='store_true',
                        help='rewrite train.txt/val.txt if they exist')
    parser.add_argument('--max-id', type=int, default=fmt.max_id,
                        help='largest valid raw id (default %(default)s)')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip and list bad files instead of stopping')
    args = parser.parse_args(argv)
    try:
        stats = convert_tree(
            args.root, image_subdir, label_subdir,
            LabelFormat(fmt.ids, args.max_id, fmt.channel), classes,
            args.nproc, args.skip_bad, args.val_size, args.seed,
            args.resplit)
    except FileNotFoundError as e:
        sys.exit(f'error: {e}')
    except BadLabelError as e:
        sys.exit(f'error: {e} (use --skip-bad to skip and list bad files)')
    split = stats.get('split', 'kept the existing train.txt/val.txt')
    print(f'\nconverted {stats["num_images"]} labels under {args.root}; '
          f'split: {split}; class statistics in '
          f'{osp.join(args.root, "class_stats.json")}')
    for bad in stats['skipped']:
        print(f'skipped {bad["file"]}: {bad["error"]}')
