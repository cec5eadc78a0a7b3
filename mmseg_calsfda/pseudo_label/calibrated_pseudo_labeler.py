from typing import Dict, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, is_distributed
from mmseg.registry import TASK_UTILS
from torch import Tensor

from .pseudo_label_rules import PseudoLabelRules

# Scores are float32 in [0, 1]; their bit patterns, read as int32, sort as
# the scores do. The threshold histogram is indexed by the upper 16 bits
# (bf16 precision, 0 ... 0x3F80 for 1.0), its refinement by the lower 16.
COARSE_BINS = 0x3F80 + 1
FINE_BINS = 1 << 16


def count_values(values: Tensor, size: int) -> Tensor:
    """Occurrences of each value in ``[0, size)`` (int64, ``size``).

    Neither way waits for the device: ``torch.bincount`` would (it reads
    the input's min and max back to the host). On a GPU the values are
    sorted and the class boundaries searched, since scattered atomic adds
    serialise when most values are equal (most pixels of an image share a
    few histogram bins); on a CPU they are scattered.
    """
    values = values.flatten()
    if values.is_cuda:
        return _count_sorted(values, size)
    values = values.long()
    return torch.zeros(size, dtype=torch.long,
                       device=values.device).scatter_add_(
                           0, values, torch.ones_like(values))


def _count_sorted(values: Tensor, size: int) -> Tensor:
    """:func:`count_values` by sorting (values outside ``[0, size)`` are
    not counted)."""
    dtype = torch.int32 if size < 2**31 else torch.int64
    ordered = values.to(dtype).sort().values
    edges = torch.arange(size + 1, dtype=dtype, device=values.device)
    return torch.searchsorted(ordered, edges).diff()


def score_bits(score: Tensor) -> Tensor:
    """The int32 bit patterns of float32 scores in [0, 1] (ordered as the
    scores)."""
    return score.contiguous().view(torch.int32)


class Top1(NamedTuple):
    """Top-1 outputs of a batch: all a pass keeps between its halves."""
    conf: Tensor  # N x H x W float32 confidence (max probability)
    pred: Tensor  # N x H x W predicted class


# what update(), refine() and label() take: N x C x H x W probabilities, or
# their Top1 (enough for everything but the reference selection)
Outputs = Union[Tensor, Top1]


class QuantileBins(NamedTuple):
    """Per class (all ranks), where the first look placed its threshold."""
    round_idx: int  # the round whose cb_prop set the ranks
    coarse: Tensor  # the coarse bin holding the threshold
    rank: Tensor  # the threshold's ascending rank inside that bin
    count: Tensor  # the scores in that bin
    total: Tensor  # the class's scores


@TASK_UTILS.register_module()
class CalibratedPseudoLabeler:
    """ECE-calibrated, class-balanced pseudo-labels (docs/method.md, stage 3).

    For every target pixel the score is ``s = (1 - e) * max_k p_k`` with
    ``e`` the image's estimated ECE. Per predicted class ``c`` the threshold
    ``tau_c`` is the ``(1 - cb_prop)`` quantile of ``s`` over all pixels
    predicted ``c`` in the target set: the ``k``-th largest score with ``k =
    ceil(cb_prop * n_c)``, so that ``s >= tau_c`` keeps ``k`` of the ``n_c``
    pixels (ties with ``tau_c`` aside). Classes never predicted get
    ``default_threshold``. A pixel keeps its prediction if

    * global: ``s >= tau_{argmax}``; or
    * local: it is among the top ``local_prop`` of its image by ``max p``.

    Everything else is ``ignore_index``. ``growth``, ``selection`` and
    ``threshold_rule`` select the official code's way instead, each on its
    own (:class:`PseudoLabelRules`; all three:
    :class:`ReferencePseudoLabeler`).

    The quantile is found with two histograms of each score's float32 bit
    pattern, as a radix select does: the upper 16 bits first (a bin as
    narrow as bf16's spacing, 19 x 16257 counts for 19 classes), then the
    lower 16 bits of the scores in the bin that holds each class's
    quantile. Both are sums of counts, so ranks all-reduce them and N
    processes get the thresholds of one, and the result is exact wherever
    the scores sit (saturated outputs pile up near 1.0, where fixed-width
    bins over [0, 1] put a third of a class into one bin). The second
    histogram needs a second look at the scores (:meth:`refine`), and it
    is not optional: the first look alone only places each class's
    quantile in a bf16-wide bin (:meth:`begin_refinement`), and on
    saturated outputs that bin can hold most of the class, so no threshold
    guessed inside it keeps about ``cb_prop`` (docs/design.md).
    :meth:`thresholds` raises, saying what to call, unless
    :meth:`refine` saw every score :meth:`update` saw. Use it as::

        labeler.reset()
        for outputs, est in target_outputs:          # pass 1: coarse
            labeler.update(outputs, est)
        labeler.begin_refinement(round_idx)           # all-reduced
        for outputs, est in target_outputs:          # the same, again: exact
            labeler.refine(outputs, est)
        tau = labeler.thresholds(round_idx)           # all-reduced
        for outputs, est in target_outputs:          # pass 2
            labels = labeler.label(outputs, est, tau, round_idx)

    ``outputs`` are ``N x C x H x W`` probabilities or their :class:`Top1`
    (:meth:`top1`), which is all a pass needs to keep between its halves
    (but for ``selection='reference'``, whose labels need every class).

    Args:
        num_classes (int): Number of classes.
        cb_prop (float): Kept fraction per class in round 0. Defaults to 0.15.
        cb_prop_step (float): Growth per round. Defaults to 0.05.
        local_prop (float): Kept fraction per image in round 0. Defaults to
            0.1.
        local_prop_step (float): Growth per round. Defaults to 0.05.
        growth (str): ``'linear'``: ``prop_0 + step * r`` for both
            (docs/method.md); ``'reference'``: ``cb_prop`` as the official
            code grows it (:class:`PseudoLabelRules`). Defaults to
            ``'linear'``.
        selection (str): ``'calibrated'`` (above) or ``'reference'``: any
            class's *unscaled* ``p_c`` passing ``tau_c``
            (:class:`PseudoLabelRules`). Defaults to ``'calibrated'``.
        threshold_rule (str): ``'exact'`` (above) or ``'reference'``: the
            official code's ``floor`` and ``>`` (:class:`PseudoLabelRules`;
            the official code also estimates the order statistic from every
            5th sorted score of each image; here every pixel counts).
            Defaults to ``'exact'``.
        default_threshold (float): Threshold of unpredicted classes.
        min_class_threshold (float): ``tau`` used in place of 0 for the class
            weights ``softmax(1 / tau)``. Defaults to 0.01.
        ignore_index (int): Label of unselected pixels. Defaults to 255.
        ece_scaling (bool): Scale the scores by ``1 - e``. False gives
            ordinary class-balanced self-training (CBST: ``s = max_k
            p_k``), the baseline the ECE guidance is measured against.
            Defaults to True.
    """

    def __init__(self,
                 num_classes: int,
                 cb_prop: float = 0.15,
                 cb_prop_step: float = 0.05,
                 local_prop: float = 0.1,
                 local_prop_step: float = 0.05,
                 growth: str = 'linear',
                 selection: str = 'calibrated',
                 threshold_rule: str = 'exact',
                 default_threshold: float = 0.5,
                 min_class_threshold: float = 0.01,
                 ignore_index: int = 255,
                 ece_scaling: bool = True) -> None:
        self.rules = PseudoLabelRules(growth, selection, threshold_rule)
        for name, value in (('cb_prop', cb_prop), ('local_prop', local_prop)):
            if not 0 <= value <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        self.num_classes = num_classes
        self.cb_prop, self.cb_prop_step = cb_prop, cb_prop_step
        self.local_prop, self.local_prop_step = local_prop, local_prop_step
        self.default_threshold = default_threshold
        self.min_class_threshold = min_class_threshold
        self.ignore_index = ignore_index
        self.ece_scaling = ece_scaling
        self.reset()

    def proportions(self, round_idx: int) -> Tuple[float, float]:
        """``(cb_prop, local_prop)`` of a round."""
        factor = self.rules.cb_prop_factor(round_idx)
        return (min(1.0, self.cb_prop + self.cb_prop_step * factor),
                min(1.0, self.local_prop + self.local_prop_step * round_idx))

    # ------------------------------------------------------------ scores
    def top1(self, outputs: Outputs) -> Top1:
        """Top-1 confidence (float32) and prediction (``N x H x W`` each)
        of ``N x C x H x W`` probabilities, checking the class count; of a
        :class:`Top1`, itself."""
        if isinstance(outputs, Top1):
            return Top1(outputs.conf.float(), outputs.pred)
        if outputs.shape[1] != self.num_classes:
            raise ValueError(
                f'CalibratedPseudoLabeler(num_classes={self.num_classes}) got '
                f'outputs with {outputs.shape[1]} classes')
        return Top1(*outputs.float().max(dim=1))

    def scores(self, outputs: Outputs,
               est_ece: Tensor) -> Tuple[Tensor, Tensor]:
        """ECE-scaled scores ``s`` and predictions, both ``N x H x W``.

        Args:
            outputs (Tensor | Top1): ``N x C x H x W`` softmax
                probabilities, or their :class:`Top1`.
            est_ece (Tensor): ``N`` estimated ECE per image.
        """
        conf, pred = self.top1(outputs)
        return self.scale(conf, est_ece), pred

    def scale(self, conf: Tensor, est_ece: Tensor) -> Tensor:
        """``s = (1 - e) * conf`` for ``N x H x W`` top-1 confidences
        (float32; ``e`` clipped to [0, 1]); ``conf`` itself without
        ``ece_scaling``."""
        if not self.ece_scaling:
            return conf.float()
        est_ece = est_ece.float().to(conf.device, non_blocking=True)
        return conf.float() * (1 - est_ece.clamp(0, 1)).view(-1, 1, 1)

    # ------------------------------------------------- thresholds: look 1
    def reset(self) -> None:
        """Starts a new pass-1 accumulation."""
        self.histogram: Optional[Tensor] = None  # C x COARSE_BINS, this rank
        self._bins: Optional[QuantileBins] = None  # begin_refinement()
        self._fine: Optional[Tensor] = None  # C x FINE_BINS, this rank

    def update(self, outputs: Outputs, est_ece: Tensor) -> None:
        """Adds a batch's scores to the per-predicted-class histograms."""
        score, pred = self.scores(outputs, est_ece)
        coarse = score_bits(score) >> 16
        counts = count_values(pred.long() * COARSE_BINS + coarse,
                              self.num_classes * COARSE_BINS)
        counts = counts.view(self.num_classes, COARSE_BINS)
        self.histogram = counts if self.histogram is None else (
            self.histogram + counts.to(self.histogram.device))

    def _all_ranks(self, counts: Tensor) -> Tensor:
        """A copy of this rank's ``counts``, summed over all ranks."""
        counts = counts.clone()
        if is_distributed():
            all_reduce(counts)
        return counts

    def _locate(self, round_idx: int) -> QuantileBins:
        """Per class (all ranks), the coarse bin holding the threshold's
        rank (``rules.threshold_rank``) and the rank inside it."""
        if self.histogram is None:
            raise RuntimeError('thresholds() before any update()')
        hist = self._all_ranks(self.histogram)
        total = hist.sum(1)
        rank = self.rules.threshold_rank(total, self.proportions(round_idx)[0])
        cdf = hist.cumsum(1)
        # the bin holding ascending rank ``rank``: first with cdf > rank
        coarse = torch.searchsorted(cdf, rank[:, None], right=True)
        coarse = coarse.squeeze(1).clamp_(max=COARSE_BINS - 1)
        below = torch.where(coarse > 0, cdf.gather(
            1, (coarse - 1).clamp(min=0)[:, None]).squeeze(1), 0)
        count = hist.gather(1, coarse[:, None]).squeeze(1)
        return QuantileBins(round_idx, coarse, rank - below, count, total)

    # ------------------------------------------------- thresholds: look 2
    def begin_refinement(self, round_idx: int) -> None:
        """Finds each class's coarse bin of the quantile (all ranks), so
        that :meth:`refine` can histogram the scores inside it."""
        self._bins = self._locate(round_idx)
        self._fine = torch.zeros(self.num_classes, FINE_BINS,
                                 dtype=torch.long,
                                 device=self.histogram.device)

    def refine(self, outputs: Outputs, est_ece: Tensor) -> None:
        """Second look at a batch's scores (after :meth:`begin_refinement`)
        for exact thresholds."""
        if self._bins is None:
            raise RuntimeError('refine() before begin_refinement()')
        score, pred = self.scores(outputs, est_ece)
        bits = score_bits(score)
        pred = pred.long()
        coarse = self._bins.coarse.to(bits.device, non_blocking=True)
        inside = (bits >> 16) == coarse[pred]
        # pixels outside their class's bin go to an extra, dropped value
        fine = torch.where(inside, pred * FINE_BINS + (bits & 0xFFFF),
                           self.num_classes * FINE_BINS)
        counts = count_values(fine, self.num_classes * FINE_BINS + 1)
        self._fine += counts[:-1].view(self._fine.shape).to(self._fine.device)

    def thresholds(self, round_idx: int) -> Tensor:
        """Per-class thresholds ``tau`` (``C``, float32, on the CPU) from the
        histograms of all ranks: exact order statistics (the second look,
        :meth:`refine`, is required); ``default_threshold`` for classes
        never predicted.

        Args:
            round_idx (int): The round, as given to
                :meth:`begin_refinement`.

        Returns:
            Tensor: The thresholds.

        Raises:
            RuntimeError: Without the second look (no
                :meth:`begin_refinement` for ``round_idx``, or
                :meth:`refine` did not see every score :meth:`update` saw),
                naming what to call.
        """
        fine = self._refined_counts(round_idx)
        bins = self._bins
        low = torch.searchsorted(fine.cumsum(1), bins.rank[:, None],
                                 right=True)
        bits = (bins.coarse << 16) | low.squeeze(1).clamp_(max=FINE_BINS - 1)
        tau = bits.int().view(torch.float32)
        # k = 0 (cb_prop * n rounds to nothing): above every score
        none_kept = bins.rank >= bins.total
        tau = torch.where(none_kept, torch.full_like(tau, 1.0 + 2**-23), tau)
        tau = torch.where(bins.total > 0, tau,
                          torch.full_like(tau, self.default_threshold))
        return tau.float().cpu()

    def _refined_counts(self, round_idx: int) -> Tensor:
        """The all-ranks fine histogram of :meth:`refine`, checked to hold
        every score of each class's quantile bin (as counted by
        :meth:`update`) for round ``round_idx``."""
        if self._bins is None or self._bins.round_idx != round_idx:
            raise RuntimeError(
                f'thresholds({round_idx}) needs the second look at the '
                f'scores: call begin_refinement({round_idx}), then refine() '
                'on every batch given to update(), before thresholds() '
                '(the first look alone cannot place the quantile inside '
                'its bf16-wide bin)')
        fine = self._all_ranks(self._fine)
        inside = self._bins.count.to(fine.device)
        seen = fine.sum(1)
        if not torch.equal(seen, inside):
            c = int((seen != inside).nonzero()[0])
            raise RuntimeError(
                f'refine() saw {int(seen[c])} scores of class {c} in its '
                f'quantile bin, update() {int(inside[c])}: call refine() '
                'once on every batch given to update() (after '
                f'begin_refinement({round_idx})) before thresholds()')
        return fine

    # ------------------------------------------------------------ labels
    def label(self, outputs: Outputs, est_ece: Tensor, thresholds: Tensor,
              round_idx: int) -> Tensor:
        """Pseudo-labels of a batch: ``N x H x W`` uint8 (``ignore_index``
        where not selected).

        Args:
            outputs (Tensor | Top1): ``N x C x H x W`` probabilities, or
                their :class:`Top1` (not with ``selection='reference'``).
            est_ece (Tensor): ``N`` estimated ECE per image.
            thresholds (Tensor): ``C`` thresholds (:meth:`thresholds`).
            round_idx (int): The round.
        """
        conf, pred = self.top1(outputs)
        tau = thresholds.to(conf.device, non_blocking=True)
        probs = None if isinstance(outputs, Top1) else outputs
        keep = self.rules.global_keep(self.scale(conf, est_ece), pred, probs,
                                      tau)
        keep = keep | self.local_mask(conf, round_idx)
        pred = pred.long()
        return torch.where(keep, pred, torch.full_like(
            pred, self.ignore_index)).to(torch.uint8)

    def local_mask(self, conf: Tensor, round_idx: int) -> Tensor:
        """Each image's pixels with ``conf`` at least its ``k``-th largest,
        ``k = floor(local_prop * pixels)`` as in the reference (none when
        ``k`` is 0)."""
        _, local_prop = self.proportions(round_idx)
        flat = conf.flatten(1)
        k = int(local_prop * flat.shape[1] + 1e-6)
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
