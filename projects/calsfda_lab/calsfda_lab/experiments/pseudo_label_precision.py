"""Per-class precision of a run's pseudo-labels on the procedural benchmark.

    python -m calsfda_lab.experiments.pseudo_label_precision RUN_DIR DATA_DIR

``RUN_DIR`` is a stage-3 work dir (``RUN_DIR/pseudo_labels/round_<r>/``),
``DATA_DIR`` the benchmark it ran on (its Cityscapes-style target *train*
labels exist there, unlike on real Cityscapes: this is a diagnostic, never
part of a method). Prints, per round and class, the kept pixels, their
precision and the two classes they most often really are.
"""
import argparse
import glob
import os.path as osp
from typing import Iterator, List, Tuple

import numpy as np
from PIL import Image

from mmseg_calsfda.datasets.label_maps import CITYSCAPES_CLASSES

# the true-label helpers, re-exported for the experiments that import them
# from here
from ..truth import (  # noqa: F401
    image_true_labels,
    labelled_class_ece,
    true_class_ece,
    true_labels,
)


def _label_pairs(round_dir: str, data_dir: str
                 ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """``(pseudo-label, true label)`` of every image of a round."""
    for path in sorted(glob.glob(osp.join(round_dir, '**', '*.png'),
                                 recursive=True)):
        yield (np.array(Image.open(path)),
               true_labels(data_dir, round_dir, path))


def confusion(round_dir: str, data_dir: str) -> np.ndarray:
    """``C x C`` counts: rows the pseudo-label, columns the true class."""
    return _counts(round_dir, data_dir)[0]


def _counts(round_dir: str, data_dir: str) -> Tuple[np.ndarray, int]:
    """:func:`confusion` and the number of pixels with a true class."""
    n = len(CITYSCAPES_CLASSES)
    counts = np.zeros((n, n), np.int64)
    labelled = 0
    for label, gt in _label_pairs(round_dir, data_dir):
        kept = (label < n) & (gt < n)
        np.add.at(counts, (label[kept], gt[kept]), 1)
        labelled += int((gt < n).sum())
    return counts, labelled


def round_quality(run_dir: str, data_dir: str) -> List[dict]:
    """Per round of a stage-3 run (in order): ``kept_share``, the
    percentage of the target training pixels with a true class that got a
    pseudo-label, and ``precision``, the percentage of those whose
    pseudo-label is their true class."""
    rows = []
    for round_dir in _round_dirs(run_dir):
        counts, labelled = _counts(round_dir, data_dir)
        rows.append(dict(
            round=int(osp.basename(round_dir).rsplit('_', 1)[1]),
            kept_share=100.0 * counts.sum() / max(labelled, 1),
            precision=100.0 * overall_precision(counts)))
    return rows


def _round_dirs(run_dir: str) -> List[str]:
    """``RUN_DIR/pseudo_labels/round_<r>``, by round."""
    return sorted(
        glob.glob(osp.join(run_dir, 'pseudo_labels', 'round_*')),
        key=lambda d: int(osp.basename(d).rsplit('_', 1)[1]))


def round_confusions(run_dir: str, data_dir: str
                     ) -> Iterator[Tuple[str, np.ndarray]]:
    """``(round dir, confusion)`` of every round of a stage-3 run, in
    order."""
    for round_dir in _round_dirs(run_dir):
        yield round_dir, confusion(round_dir, data_dir)


def overall_precision(counts: np.ndarray) -> float:
    """The share of the kept pixels whose pseudo-label is their true
    class, from a :func:`confusion`."""
    return float(np.trace(counts) / max(counts.sum(), 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dir')
    parser.add_argument('data_dir')
    args = parser.parse_args()
    for round_dir, counts in round_confusions(args.run_dir, args.data_dir):
        print(f'{osp.basename(round_dir)}: {counts.sum()} kept pixels, '
              f'precision {overall_precision(counts):.3f}')
        for c, row in enumerate(counts):
            if row.sum() == 0:
                continue
            top = np.argsort(-row)[:2]
            really = ', '.join(
                f'{CITYSCAPES_CLASSES[t]} {row[t] / row.sum():.2f}'
                for t in top)
            print(f'  {CITYSCAPES_CLASSES[c]:>13s}: {row.sum():8d} kept, '
                  f'precision {row[c] / row.sum():.2f}; really {really}')


if __name__ == '__main__':
    main()
