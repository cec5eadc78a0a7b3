"""What does a target image's class-level ECE follow?

    python -m calsfda_lab.experiments.ece_drivers work_dirs/tune_hard_s0 \\
      [--out \\
      projects/calsfda_lab/records/experiments/ece-drivers-hard-seed0.json] \\
      [--stage2 stage2_value_source_shift_0_0.8_0.5_it2000/iter_300.pth]

The value head is judged by the Spearman between its estimate and the true
per-image class-level ECE on target val (``EstimatedECEMetric``, as
``compare.py`` measures it: the run's stage-2 model, value-head BN
statistics re-estimated on target). This script puts other per-image
quantities beside the estimate, each ranked against the same truth:
label-free ones a value head could read (``1 - mean max p``, mean
entropy, the number of classes predicted on at least ``--min-pixels``
pixels, two soft class counts that also see classes the prediction
hides: the classes whose probability reaches 0.3 at some pixel, and the
sum over classes of each one's highest probability) and two that need
the labels (the number of classes the image really contains, the pixel
error rate). The truth is taken both as the
method defines it (``class_average='all'``: the sum of the present classes'
ECEs over all C classes) and as the mean over the present classes only;
the error rate is ranked against the others too (which images are hard).
An experiment: it reads target val labels.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List

import torch
from mmengine.runner import Runner  # noqa: E402
from scipy import stats

from mmseg_calsfda.testing import demo_stages as demo  # noqa: E402

from .pseudo_label_precision import (  # noqa: E402
    image_true_labels,
    labelled_class_ece,
)
from .ranking_precision import predict, stage2_model  # noqa: E402

TRUTHS = ('cECE_all', 'cECE_present')
DRIVERS = ('estECE', 'one_minus_max_p', 'entropy', 'n_predicted',
           'n_reaching_0.3', 'soft_presence', 'n_true', 'error_rate')


def image_row(model, batch: dict, min_pixels: int) -> Dict[str, float]:
    """Every truth and driver of one target val image.

    Args:
        model: The stage-2 segmentor, eval mode.
        batch (dict): A one-image target val batch.
        min_pixels (int): Pixels a class needs to count as predicted.

    Returns:
        dict[str, float]: :data:`TRUTHS` and :data:`DRIVERS` by name.
    """
    probs, est_ece, img_path = predict(model, batch)
    label = torch.from_numpy(image_true_labels(img_path)).long()
    row = {
        truth: labelled_class_ece(probs, label, average).item()
        for truth, average in zip(TRUTHS, ('all', 'present'))
    }
    log_probs = probs.clamp_min(1e-12).log()
    conf, pred = probs[0].max(0)
    valid = label != 255
    counts = torch.bincount(pred.flatten(), minlength=probs.shape[1])
    peak = probs[0].flatten(1).max(1).values  # per class, over pixels
    row.update(
        estECE=est_ece.item(),
        one_minus_max_p=1 - conf.mean().item(),
        entropy=-(probs * log_probs).sum(1).mean().item(),
        n_predicted=int((counts >= min_pixels).sum()),
        **{'n_reaching_0.3': int((peak >= 0.3).sum())},
        soft_presence=peak.sum().item(),
        n_true=int(label[valid].unique().numel()),
        error_rate=(pred != label)[valid].float().mean().item())
    return row


def spearman_table(rows: List[dict]) -> Dict[str, Dict[str, float]]:
    """Spearman of every driver with every truth over the images, and
    of the others with the pixel error rate (how hard the image is)."""

    def rank(a: str, b: str) -> float:
        return round(float(stats.spearmanr([r[a] for r in rows],
                                           [r[b] for r in rows])[0]), 3)

    table = {truth: {d: rank(d, truth) for d in DRIVERS} for truth in TRUTHS}
    table['error_rate'] = {d: rank(d, 'error_rate')
                           for d in DRIVERS + TRUTHS if d != 'error_rate'}
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='a finished calsfda_lab.compare run')
    parser.add_argument('--min-pixels', type=int, default=10,
                        help='pixels a class needs to count as predicted')
    parser.add_argument('--out', help='JSON file for the table')
    parser.add_argument('--stage2', help='another stage-2 checkpoint, '
                        "relative to work_dir (default: the run's own)")
    args = parser.parse_args()
    model, _, run, cfg = stage2_model(args.work_dir, 'ece_drivers',
                                      modules=('value_head', ),
                                      checkpoint=args.stage2)
    val = Runner.build_dataloader(
        demo.target_dataloader(cfg, osp.join(args.work_dir, 'data'), 'val'),
        seed=run.seed)
    with torch.no_grad():
        rows = [image_row(model, batch, args.min_pixels) for batch in val]
    table = spearman_table(rows)
    for truth, row in table.items():
        print(f'Spearman with {truth}: ' +
              ', '.join(f'{k} {v:.3f}' for k, v in row.items()), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(seed=run.seed, shift=run.shift,
                           min_pixels=args.min_pixels, spearman=table,
                           images=rows), f, indent=2)


if __name__ == '__main__':
    main()
