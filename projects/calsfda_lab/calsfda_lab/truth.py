"""The procedural benchmark's true target labels, for diagnostics only.

Unlike real Cityscapes, the generated target *train* images have labels on
disk; the experiments read them to measure pseudo-labels and to run
oracle variants. No method reads them.
"""
import os.path as osp

import numpy as np
import torch
from PIL import Image

from mmseg_calsfda.calibration import classwise_ece


def true_labels(data_dir: str, round_dir: str, path: str) -> np.ndarray:
    """The benchmark's true train ids of the target training image whose
    pseudo-label is ``path`` (in ``round_dir``)."""
    rel = osp.relpath(path, round_dir)[:-len('.png')]
    return np.array(Image.open(osp.join(
        data_dir, 'cityscapes', 'gtFine', 'train',
        rel + '_gtFine_labelTrainIds.png')))


def image_true_labels(img_path: str) -> np.ndarray:
    """The benchmark's true train ids of a Cityscapes-style target image
    (``.../leftImg8bit/<split>/<city>/<name>_leftImg8bit.png``)."""
    head, tail = img_path.rsplit('leftImg8bit/', 1)
    return np.array(Image.open(osp.join(head, 'gtFine', tail.replace(
        '_leftImg8bit.png', '_gtFine_labelTrainIds.png'))))


def true_class_ece(probs: torch.Tensor, img_path: str) -> torch.Tensor:
    """The true class-level ECE, shape ``(1,)``, of a ``1 x C x H x W``
    prediction of the target image at ``img_path`` (its benchmark
    labels), on the probabilities' device."""
    label = torch.from_numpy(image_true_labels(img_path)).long()
    return labelled_class_ece(probs, label)


def labelled_class_ece(probs: torch.Tensor, label: torch.Tensor,
                       class_average: str = 'all') -> torch.Tensor:
    """:func:`true_class_ece` from an ``H x W`` label already read;
    ``class_average`` as :func:`classwise_ece` takes it."""
    return classwise_ece(probs.clamp_min(1e-12).log(),
                         label[None].to(probs.device), fused=False,
                         class_average=class_average)
