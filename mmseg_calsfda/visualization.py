"""Reliability diagrams from per-bin calibration statistics."""
import os
import os.path as osp
import tempfile

import numpy as np
from torch import Tensor


def plot_reliability_diagram(count: Tensor,
                             conf_sum: Tensor,
                             acc_sum: Tensor,
                             out_file: str,
                             title: str = '',
                             merge_last: bool = False) -> str:
    """Draws accuracy vs confidence per bin, with the calibration gap.

    Args:
        count, conf_sum, acc_sum (Tensor): Per-bin sums (1-D).
        out_file (str): PNG path; written atomically.
        title (str): Figure title, e.g. the ECE.
        merge_last (bool): The last bin holds confidences of exactly 1.0
            (torchmetrics' binning): draw it as part of the bin before.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    count, conf_sum, acc_sum = (t.double().cpu().numpy()
                                for t in (count, conf_sum, acc_sum))
    if merge_last:
        count, conf_sum, acc_sum = (np.concatenate([a[:-2], a[-2:].sum(
            keepdims=True)]) for a in (count, conf_sum, acc_sum))
    n_bins = len(count)
    safe = np.maximum(count, 1)
    acc, conf = acc_sum / safe, conf_sum / safe
    edges = np.linspace(0, 1, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    nonempty = count > 0

    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(4.5, 5.5), gridspec_kw=dict(height_ratios=[3, 1]),
        sharex=True)
    ax.bar(centers[nonempty], acc[nonempty], width=width, color='#4878d0',
           edgecolor='black', label='accuracy')
    ax.bar(centers[nonempty], (conf - acc)[nonempty], bottom=acc[nonempty],
           width=width, color='#ee854a', alpha=0.6, edgecolor='#c44e52',
           hatch='//', label='gap (conf - acc)')
    ax.plot([0, 1], [0, 1], 'k--', linewidth=1, label='perfect calibration')
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel='accuracy', title=title)
    ax.legend(loc='upper left', fontsize=8)
    hist.bar(centers, count / max(count.sum(), 1), width=width,
             color='grey', edgecolor='black')
    hist.set(xlabel='confidence', ylabel='fraction')
    fig.tight_layout()

    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.png', dir=out_dir)
    os.close(fd)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out_file)
    return out_file
