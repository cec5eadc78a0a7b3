from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, is_distributed
from mmseg.registry import TASK_UTILS
from torch import Tensor

SELECTIONS = ('calibrated', 'reference')
GROWTHS = ('linear', 'reference')


def count_values(values: Tensor, size: int) -> Tensor:
    """Occurrences of each value in ``[0, size)`` (int64, ``size``).

    ``torch.bincount`` reads the input's min and max back to the host, i.e.
    waits for the device on every call; scattering into a fixed-size
    tensor does not, so a pass over many images can queue its work ahead.
    """
    values = values.flatten().long()
    return torch.zeros(size, dtype=torch.long,
                       device=values.device).scatter_add_(
                           0, values, torch.ones_like(values))


@TASK_UTILS.register_module()
class CalibratedPseudoLabeler:
    """ECE-calibrated, class-balanced pseudo-labels (METHOD.md, stage 3).

    For every target pixel the score is ``s = (1 - e) * max_k p_k`` with
    ``e`` the image's estimated ECE. Per predicted class ``c`` the threshold
    ``tau_c`` is the ``(1 - cb_prop)`` quantile of ``s`` over all pixels
    predicted ``c`` in the target set, read off a fixed-bin histogram (summed
    across ranks, so N processes give the thresholds of one); classes never
    predicted get ``default_threshold``. A pixel keeps its prediction if

    * global: ``s >= tau_{argmax}`` (``selection='calibrated'``), or -- the
      reference code -- any class ``c`` has an *unscaled* ``p_c >= tau_c``
      (``selection='reference'``); or
    * local: it is among the top ``local_prop`` of its image by ``max p``.

    Everything else is ``ignore_index``. Use it in two passes::

        labeler.reset()
        for probs, est in target_outputs:         # pass 1
            labeler.update(probs, est)
        tau = labeler.thresholds(round_idx)        # all-reduced
        for probs, est in target_outputs:         # pass 2
            labels = labeler.label(probs, est, tau, round_idx)

    Args:
        num_classes (int): Number of classes.
        cb_prop (float): Kept fraction per class in round 0. Defaults to 0.15.
        cb_prop_step (float): Growth per round. Defaults to 0.05.
        local_prop (float): Kept fraction per image in round 0. Defaults to
            0.1.
        local_prop_step (float): Growth per round. Defaults to 0.05.
        growth (str): ``'linear'``: ``prop_0 + step * r`` (METHOD.md);
            ``'reference'``: cumulative ``prop_0 + step * r (r + 1) / 2``
            (0.15, 0.20, 0.30, 0.45, ...), as the reference code grows it.
        selection (str): ``'calibrated'`` or ``'reference'`` (see above).
        num_bins (int): Histogram bins over [0, 1]. Defaults to 2000.
        default_threshold (float): Threshold of unpredicted classes.
        min_class_threshold (float): ``tau`` used in place of 0 for the class
            weights ``softmax(1 / tau)``. Defaults to 0.01.
        ignore_index (int): Label of unselected pixels. Defaults to 255.
    """

    def __init__(self,
                 num_classes: int,
                 cb_prop: float = 0.15,
                 cb_prop_step: float = 0.05,
                 local_prop: float = 0.1,
                 local_prop_step: float = 0.05,
                 growth: str = 'linear',
                 selection: str = 'calibrated',
                 num_bins: int = 2000,
                 default_threshold: float = 0.5,
                 min_class_threshold: float = 0.01,
                 ignore_index: int = 255) -> None:
        if selection not in SELECTIONS:
            raise ValueError(f'selection must be one of {SELECTIONS}, got '
                             f'{selection!r}')
        if growth not in GROWTHS:
            raise ValueError(f'growth must be one of {GROWTHS}, got '
                             f'{growth!r}')
        if num_bins < 1000:
            raise ValueError(f'num_bins must be >= 1000 for exact-enough '
                             f'quantiles, got {num_bins}')
        for name, value in (('cb_prop', cb_prop), ('local_prop', local_prop)):
            if not 0 <= value <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        self.num_classes = num_classes
        self.cb_prop, self.cb_prop_step = cb_prop, cb_prop_step
        self.local_prop, self.local_prop_step = local_prop, local_prop_step
        self.growth = growth
        self.selection = selection
        self.num_bins = num_bins
        self.default_threshold = default_threshold
        self.min_class_threshold = min_class_threshold
        self.ignore_index = ignore_index
        self.histogram: Optional[Tensor] = None

    # ------------------------------------------------------------ schedule
    def _grow(self, base: float, step: float, round_idx: int) -> float:
        factor = round_idx if self.growth == 'linear' else (
            round_idx * (round_idx + 1) / 2)
        return min(1.0, base + step * factor)

    def proportions(self, round_idx: int) -> Tuple[float, float]:
        """``(cb_prop, local_prop)`` of a round."""
        return (self._grow(self.cb_prop, self.cb_prop_step, round_idx),
                self._grow(self.local_prop, self.local_prop_step, round_idx))

    # -------------------------------------------------------------- pass 1
    def reset(self) -> None:
        """Starts a new pass-1 accumulation."""
        self.histogram = None

    def top1(self, probs: Tensor) -> Tuple[Tensor, Tensor]:
        """Top-1 confidence and prediction (``N x H x W`` each) of
        ``N x C x H x W`` probabilities; checks the class count."""
        if probs.shape[1] != self.num_classes:
            raise ValueError(
                f'CalibratedPseudoLabeler(num_classes={self.num_classes}) got '
                f'outputs with {probs.shape[1]} classes')
        return probs.float().max(dim=1)

    def scores(self, probs: Tensor, est_ece: Tensor) -> Tuple[Tensor, Tensor]:
        """ECE-scaled scores ``s`` and predictions, both ``N x H x W``.

        Args:
            probs (Tensor): ``N x C x H x W`` softmax probabilities.
            est_ece (Tensor): ``N`` estimated ECE per image.
        """
        conf, pred = self.top1(probs)
        return self.scale(conf, est_ece), pred

    @staticmethod
    def scale(conf: Tensor, est_ece: Tensor) -> Tensor:
        """``s = (1 - e) * conf`` for ``N x H x W`` top-1 confidences."""
        est_ece = est_ece.float().to(conf.device, non_blocking=True)
        return conf.float() * (1 - est_ece).view(-1, 1, 1)

    def update(self, probs: Tensor, est_ece: Tensor) -> None:
        """Adds a batch's scores to the per-predicted-class histograms."""
        self.update_top1(*self.top1(probs), est_ece)

    def update_top1(self, conf: Tensor, pred: Tensor,
                    est_ece: Tensor) -> None:
        """:meth:`update` from top-1 confidences and predictions."""
        score = self.scale(conf, est_ece)
        pred = pred.long()
        bins = (score * self.num_bins).long().clamp_(0, self.num_bins - 1)
        counts = count_values(pred * self.num_bins + bins,
                              self.num_classes * self.num_bins)
        counts = counts.view(self.num_classes, -1).double()
        self.histogram = counts if self.histogram is None else (
            self.histogram + counts.to(self.histogram.device))

    def thresholds(self, round_idx: int) -> Tensor:
        """Per-class thresholds ``tau`` (``C``) from the histograms of all
        ranks: the ``(1 - cb_prop)`` quantile, linearly interpolated inside
        its bin; ``default_threshold`` for classes never predicted."""
        if self.histogram is None:
            raise RuntimeError('thresholds() before any update()')
        hist = self.histogram.clone()
        if is_distributed():
            all_reduce(hist)
        cb_prop, _ = self.proportions(round_idx)
        total = hist.sum(dim=1, keepdim=True)
        cdf = hist.cumsum(dim=1)
        target = (1 - cb_prop) * total
        # first bin whose cumulative count reaches the quantile's rank
        idx = torch.searchsorted(cdf, target).clamp_(max=self.num_bins - 1)
        below = torch.where(idx > 0, cdf.gather(1, (idx - 1).clamp(min=0)),
                            torch.zeros_like(target))
        inside = hist.gather(1, idx)
        frac = torch.where(inside > 0, (target - below) / inside,
                           torch.zeros_like(inside)).clamp(0, 1)
        tau = ((idx.double() + frac) / self.num_bins).squeeze(1)
        tau = torch.where(total.squeeze(1) > 0, tau,
                          torch.full_like(tau, self.default_threshold))
        return tau.float().cpu()

    # -------------------------------------------------------------- pass 2
    def label(self, probs: Tensor, est_ece: Tensor, thresholds: Tensor,
              round_idx: int) -> Tensor:
        """Pseudo-labels of a batch: ``N x H x W`` uint8 (``ignore_index``
        where not selected)."""
        conf, pred = self.top1(probs)
        if self.selection == 'calibrated':
            return self.label_top1(conf, pred, est_ece, thresholds,
                                   round_idx)
        # the reference: unscaled probabilities, any class passes
        tau = thresholds.to(probs.device, non_blocking=True)
        keep = (probs.float() >= tau.view(1, -1, 1, 1)).any(dim=1)
        return self._finish(keep, conf, pred, round_idx)

    def label_top1(self, conf: Tensor, pred: Tensor, est_ece: Tensor,
                   thresholds: Tensor, round_idx: int) -> Tensor:
        """:meth:`label` from top-1 confidences and predictions alone
        (``selection='calibrated'`` needs nothing else), so a pass can keep
        3 bytes per pixel between its two halves instead of running the
        model twice."""
        if self.selection != 'calibrated':
            raise RuntimeError("selection='reference' needs every class's "
                               'probability: use label()')
        tau = thresholds.to(conf.device, non_blocking=True)
        keep = self.scale(conf, est_ece) >= tau[pred.long()]
        return self._finish(keep, conf.float(), pred, round_idx)

    def _finish(self, keep: Tensor, conf: Tensor, pred: Tensor,
                round_idx: int) -> Tensor:
        keep = keep | self.local_mask(conf, round_idx)
        pred = pred.long()
        return torch.where(keep, pred, torch.full_like(
            pred, self.ignore_index)).to(torch.uint8)

    def local_mask(self, conf: Tensor, round_idx: int) -> Tensor:
        """Top ``local_prop`` fraction of each image's pixels by ``conf``."""
        _, local_prop = self.proportions(round_idx)
        flat = conf.flatten(1)
        k = int(np.ceil(local_prop * flat.shape[1]))
        if k == 0:
            return torch.zeros_like(conf, dtype=torch.bool)
        # the k-th largest value; unsorted top-k is the cheapest way there
        kth = flat.topk(k, dim=1, sorted=False).values.min(
            dim=1, keepdim=True).values
        return (flat >= kth).view_as(conf)

    def class_weights(self, thresholds: Tensor) -> Tensor:
        """``softmax(1 / tau)`` with ``tau = 0`` replaced by
        ``min_class_threshold`` (the SCE class weights)."""
        tau = torch.where(thresholds > 0, thresholds,
                          torch.full_like(thresholds,
                                          self.min_class_threshold))
        return F.softmax(1 / tau, dim=0)

    def summary(self, thresholds: Tensor, kept: Tensor,
                predicted: Tensor) -> Dict:
        """A JSON-able round summary: thresholds and kept fraction per
        class (``kept`` / ``predicted`` pixel counts, ``C`` each)."""
        frac = torch.where(predicted > 0, kept / predicted.clamp(min=1),
                           torch.zeros_like(kept, dtype=torch.float64))
        return dict(
            thresholds=[round(float(t), 6) for t in thresholds],
            kept_fraction=[round(float(f), 6) for f in frac],
            kept_pixels=[int(k) for k in kept],
            predicted_pixels=[int(p) for p in predicted])
