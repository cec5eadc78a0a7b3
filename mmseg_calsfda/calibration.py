"""Expected calibration error: the one place it is computed.

Everything in Cal-SFDA that needs an ECE -- the differentiable loss, the
evaluation metric, the value head's training target and the pseudo-labeler --
calls the functions below. They reduce a set of (confidence, correctness)
pairs to per-bin statistics in a single vectorised scatter and turn the
statistics into ECE values:

* :func:`bin_index` maps confidences to bins,
* :func:`bin_stats` sums ``count``, ``conf_sum`` and ``acc_sum`` per
  ``(group, bin)`` -- a group is whatever the ECE is taken over: one image and
  ground-truth class for the class-level ECE, the whole dataset for top-label,
* :func:`ece_from_stats` turns them into one ECE per group,
* :func:`classwise_ece` is the class-level ECE of docs/method.md per image.

Since ``(|B_b| / |S|) * |mean_conf(B_b) - acc(B_b)| == |conf_sum_b -
acc_sum_b| / |S|``, the ECE of a group is ``sum_b |conf_sum_b - acc_sum_b| /
sum_b count_b``: no division by bin counts, empty bins contribute nothing
and an empty group has ECE 0. Gradients flow through ``conf_sum`` only.

All statistics are float32 whatever the input dtype (bf16/fp16 under AMP).
"""
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from . import fused_bin_stats
from .utils import check_choice

BIN_CLOSED = ('right', 'left')
CLASS_AVERAGES = ('all', 'present')


class CalibrationStats(NamedTuple):
    """Per-bin sums, each of shape ``(num_groups, num_bins)`` in float32."""
    count: Tensor
    conf_sum: Tensor
    acc_sum: Tensor

    def __add__(self, other: 'CalibrationStats') -> 'CalibrationStats':
        return CalibrationStats(*(a + b for a, b in zip(self, other)))

    def stack(self) -> Tensor:
        """All three sums as one ``(3, num_groups, num_bins)`` tensor."""
        return torch.stack(tuple(self))


def check_n_bins(n_bins: int) -> int:
    """Validates a bin count and returns it."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f'n_bins must be an integer >= 1, got {n_bins!r}')
    return n_bins


def num_bin_slots(n_bins: int, closed: str = 'right') -> int:
    """Number of bins :func:`bin_index` may return for ``closed``."""
    return n_bins + 1 if closed == 'left' else n_bins


def bin_edges(n_bins: int, device: torch.device) -> Tensor:
    """The ``n_bins + 1`` float32 edges of equal-width bins over [0, 1]."""
    return torch.linspace(0, 1, n_bins + 1, device=device)


def bin_index(conf: Tensor, n_bins: int, closed: str = 'right') -> Tensor:
    """Maps confidences to equal-width bins over [0, 1].

    Args:
        conf (Tensor): Confidences of any shape.
        n_bins (int): Number of equal-width bins.
        closed (str): ``'right'``: bin ``b`` is ``(b/n, (b+1)/n]``
            (docs/method.md, the reference code); confidences <= 0 go to
            bin 0 and >= 1 to the last bin. ``'left'``: bin ``b`` is
            ``[b/n, (b+1)/n)`` and confidences >= 1 get an extra bin ``n``,
            which is exactly torchmetrics' ``MulticlassCalibrationError``
            binning.

    Returns:
        Tensor: int64 bin indices, same shape as ``conf``, in
        ``[0, num_bin_slots(n_bins, closed))``.
    """
    check_choice('closed', closed, BIN_CLOSED)
    conf = conf.detach().float()
    edges = bin_edges(n_bins, conf.device)
    if closed == 'right':
        return torch.bucketize(conf, edges[1:-1], right=False)
    return (torch.bucketize(conf, edges, right=True) - 1).clamp_(min=0)


def bin_stats(conf: Tensor,
              correct: Tensor,
              n_bins: int,
              group: Optional[Tensor] = None,
              num_groups: int = 1,
              weight: Optional[Tensor] = None,
              closed: str = 'right') -> CalibrationStats:
    """Sums count, confidence and accuracy per ``(group, bin)`` in one pass.

    Args:
        conf (Tensor): Confidences, any shape; differentiable.
        correct (Tensor): Same shape; 1 where the prediction is right.
        n_bins (int): Number of confidence bins.
        group (Tensor, optional): Same shape, int64 in ``[0, num_groups)``.
            Defaults to a single group.
        num_groups (int): Number of groups.
        weight (Tensor, optional): Same shape; each element's weight (0 drops
            it, e.g. for ignored pixels). Defaults to 1.
        closed (str): Bin convention, see :func:`bin_index`.

    Returns:
        CalibrationStats: float32 sums of shape
        ``(num_groups, num_bin_slots(n_bins, closed))``.
    """
    conf = conf.float().reshape(-1)
    correct = correct.float().reshape(-1)
    weight = (torch.ones_like(conf) if weight is None else
              weight.float().reshape(-1))
    slots = num_bin_slots(n_bins, closed)
    index = bin_index(conf, n_bins, closed)
    if group is not None:
        index = index + group.reshape(-1) * slots
    values = torch.stack((weight, conf * weight, correct * weight), dim=1)
    sums = values.new_zeros(num_groups * slots, 3).index_add_(0, index, values)
    sums = sums.view(num_groups, slots, 3)
    return CalibrationStats(sums[..., 0], sums[..., 1], sums[..., 2])


def ece_from_stats(stats: CalibrationStats) -> Tensor:
    """Expected calibration error of every group.

    Args:
        stats (CalibrationStats): Sums of shape ``(..., num_bins)``.

    Returns:
        Tensor: ECE per group, shape ``stats.count.shape[:-1]``; 0 for groups
        without any element.
    """
    total = stats.count.sum(-1)
    gap = (stats.conf_sum - stats.acc_sum).abs().sum(-1)
    nonempty = total > 0
    return torch.where(nonempty, gap / torch.where(nonempty, total, 1.), 0.)


def mean_over_classes(class_ece: Tensor, class_count: Tensor,
                      class_average: str) -> Tensor:
    """Averages per-class ECE over the last dimension.

    Args:
        class_ece (Tensor): ``(..., C)`` ECE per class.
        class_count (Tensor): ``(..., C)`` number of elements per class.
        class_average (str): ``'all'`` divides by C (absent classes count 0,
            the reference), ``'present'`` by the number of classes present.

    Returns:
        Tensor: ``(...)``; 0 where no class is present.
    """
    if class_average == 'all':
        return class_ece.mean(-1)
    present = (class_count > 0).sum(-1)
    return class_ece.sum(-1) / present.clamp(min=1)


def _shifted_exp(probs: Tensor, top: Tensor, temperature: float) -> Tensor:
    """``exp((p - max p) / t)``. Terms below e^-80 are 0 next to the
    maximum's e^0 in float32; clamping them there keeps them off the CPU's
    ``exp`` underflow path, 4x slower, which every element but the maximum
    takes when ``t`` is small."""
    return ((probs - top) / temperature).clamp_(min=-80.0).exp_()


class _SmoothMax(torch.autograd.Function):
    """``t * logsumexp(p / t)`` over ``dim``, computed shifted by the
    maximum. Its gradient, ``softmax(p / t)``, is recomputed from ``p`` in
    the backward pass rather than kept: the softmax that made ``p`` keeps
    ``p`` anyway, so the smooth maximum holds no tensor of its own."""

    @staticmethod
    def forward(ctx, probs: Tensor, temperature: float,
                dim: int) -> Tensor:
        top = probs.amax(dim=dim, keepdim=True)
        total = _shifted_exp(probs, top, temperature).sum(dim, keepdim=True)
        ctx.save_for_backward(probs, top, total)
        ctx.temperature, ctx.dim = temperature, dim
        return (top + temperature * total.log()).squeeze(dim)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple:
        probs, top, total = ctx.saved_tensors
        weight = _shifted_exp(probs, top, ctx.temperature).div_(total)
        return weight.mul_(grad.unsqueeze(ctx.dim)), None, None


def smooth_max_confidence(probs: Tensor,
                          temperature: float,
                          dim: int = 1) -> Tensor:
    """LogSumExp smooth maximum ``t * log(sum_k exp(p_k / t))`` in float32.

    For small ``t`` this is the maximum probability; larger ``t`` spreads the
    gradient over all classes. The result is clipped to at most 1 (it exceeds
    the true maximum by at most ``t * log(C)``).

    Args:
        probs (Tensor): Probabilities, classes along ``dim``.
        temperature (float): ``t > 0``.
        dim (int): The class dimension.

    Returns:
        Tensor: The confidence, ``dim`` removed.
    """
    conf = _SmoothMax.apply(probs.float(), temperature, dim)
    return conf.clamp(max=1.0)


def check_labels(label: Tensor, num_classes: int, ignore_index: int) -> None:
    """Raises ``ValueError`` if ``label`` holds values outside
    ``[0, num_classes)`` other than ``ignore_index``. Synchronises with the
    device, so hot paths call it only on CPU tensors or once."""
    bad = (label != ignore_index) & ((label < 0) | (label >= num_classes))
    if bool(bad.any()):
        values = torch.unique(label[bad])[:10].tolist()
        raise ValueError(
            f'label holds values {values} outside [0, {num_classes}) that are '
            f'not ignore_index={ignore_index}')


def classwise_ece(logits: Tensor,
                  label: Tensor,
                  n_bins: int = 10,
                  temperature: Optional[float] = None,
                  ignore_index: int = 255,
                  class_average: str = 'all',
                  weight: Optional[Tensor] = None,
                  fused: bool = True) -> Tensor:
    """Class-level ECE of every image (docs/method.md, stage 1).

    For every ground-truth class ``c`` of an image, the ECE of its pixels
    (confidence vs ``argmax == c``); absent classes have ECE 0; the image's
    score is the mean over classes (see :func:`mean_over_classes`).

    Args:
        logits (Tensor): ``N x C x H x W`` logits, any float dtype.
        label (Tensor): ``N x H x W`` ground truth; ``ignore_index`` and any
            value outside ``[0, C)`` are left out.
        n_bins (int): Number of bins, ``(lo, hi]`` each.
        temperature (float, optional): LogSumExp temperature of the
            confidence; ``None`` uses the plain maximum probability.
        ignore_index (int): Label value to ignore.
        class_average (str): ``'all'`` or ``'present'``.
        weight (Tensor, optional): ``N x H x W`` pixel weights (e.g. from an
            MMSeg pixel sampler); 0 leaves a pixel out. No gradient flows
            to them.
        fused (bool): On a CUDA device with Triton installed, make the
            per-bin sums in two fused kernels (:mod:`.fused_bin_stats`),
            the same values to float32 rounding; ``False`` always uses the
            PyTorch ops below. Defaults to True.

    Returns:
        Tensor: float32 ECE per image, shape ``(N,)``, in [0, 1];
        differentiable w.r.t. ``logits`` through the confidences.
    """
    num_imgs, num_classes = logits.shape[:2]
    if fused and fused_bin_stats.available(logits):
        bounds = bin_edges(n_bins, logits.device)[1:-1]
        stats = CalibrationStats(*fused_bin_stats.class_bin_stats(
            logits, label, bounds, temperature, ignore_index, weight))
    else:
        stats = _class_bin_stats(logits, label, n_bins, temperature,
                                 ignore_index, weight)
    per_class = ece_from_stats(stats).view(num_imgs, num_classes)
    class_count = stats.count.sum(-1).view(num_imgs, num_classes)
    return mean_over_classes(per_class, class_count, class_average)


def imagewise_ece(logits: Tensor,
                  label: Tensor,
                  n_bins: int = 10,
                  temperature: Optional[float] = None,
                  ignore_index: int = 255) -> Tensor:
    """Plain (not class-level) ECE of every image: all its labelled pixels
    binned by confidence, accuracy ``argmax == label``.

    Args:
        logits (Tensor): ``N x C x H x W`` logits, any float dtype.
        label (Tensor): ``N x H x W`` ground truth; ``ignore_index`` and any
            value outside ``[0, C)`` are left out.
        n_bins (int): Number of bins, ``(lo, hi]`` each.
        temperature (float, optional): LogSumExp temperature of the
            confidence; ``None`` uses the plain maximum probability.
        ignore_index (int): Label value to ignore.

    Returns:
        Tensor: float32 ECE per image, shape ``(N,)``, in [0, 1]; 0 for an
        image without labelled pixels.
    """
    num_imgs = logits.shape[0]
    conf, pred, label, valid = _pixel_terms(logits, label, temperature,
                                            ignore_index)
    image = torch.arange(num_imgs, device=label.device).view(-1, 1, 1)
    stats = bin_stats(conf, pred == label, n_bins,
                      group=image.expand_as(label), num_groups=num_imgs,
                      weight=valid)
    return ece_from_stats(stats)


def _pixel_terms(logits: Tensor, label: Tensor,
                 temperature: Optional[float], ignore_index: int) -> tuple:
    """Per pixel: confidence (differentiable), predicted class, int64 label
    and whether the label counts (not ``ignore_index``, inside ``[0, C)``)."""
    probs = F.softmax(logits, dim=1, dtype=torch.float32)
    if temperature is None:
        conf, pred = probs.max(dim=1)
    else:
        conf = smooth_max_confidence(probs, temperature)
        pred = probs.detach().max(dim=1).indices
    label = label.long()
    valid = (label != ignore_index) & (label >= 0) & (label < logits.shape[1])
    return conf, pred, label, valid


def _class_bin_stats(logits: Tensor, label: Tensor, n_bins: int,
                     temperature: Optional[float], ignore_index: int,
                     weight: Optional[Tensor]) -> CalibrationStats:
    """:func:`classwise_ece`'s per-(image x class, bin) sums in PyTorch
    ops (the reference of :mod:`.fused_bin_stats`, and the CPU path)."""
    num_imgs, num_classes = logits.shape[:2]
    conf, pred, label, valid = _pixel_terms(logits, label, temperature,
                                            ignore_index)
    pixel_weight = valid if weight is None else valid * weight
    target = torch.where(valid, label, 0)
    correct = pred == target
    image = torch.arange(num_imgs, device=label.device).view(-1, 1, 1)
    return bin_stats(
        conf,
        correct,
        n_bins,
        group=image * num_classes + target,
        num_groups=num_imgs * num_classes,
        weight=pixel_weight.detach())
