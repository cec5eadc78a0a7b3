from typing import Optional

import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from ...calibration import (
    CLASS_AVERAGES,
    check_labels,
    check_n_bins,
    classwise_ece,
)
from ...utils import check_choice


@MODELS.register_module()
class DiffECELoss(nn.Module):
    """Differentiable class-level expected calibration error (Cal-SFDA).

    For every image and every ground-truth class ``c``, the pixels labelled
    ``c`` are binned by their confidence -- the LogSumExp smooth maximum of
    the softmax probabilities, ``t * log(sum_k exp(p_k / t))`` -- and the
    class's ECE is ``sum_b |B_b|/|S_c| * |mean conf(B_b) - acc(B_b)|`` with
    ``acc = [argmax == c]``. The image's loss is the mean over classes and the
    batch loss the mean over images. Gradients flow through the per-bin mean
    confidences only. The math runs in float32 even under AMP.

    Use it beside a cross-entropy in any decode head::

        loss_decode=[
            dict(type='CrossEntropyLoss', loss_weight=1.0),
            dict(type='DiffECELoss', loss_weight=1.0)]

    Args:
        n_bins (int): Number of equal-width confidence bins ``(lo, hi]``.
            Defaults to 10.
        temperature (float): LogSumExp temperature ``t > 0``; the reference
            1e-5 is numerically the maximum probability. Defaults to 1e-5.
        class_average (str): ``'all'`` divides the sum of per-class ECEs by
            all C classes, absent ones counting 0 (reference); ``'present'``
            averages over the classes present in the image. Defaults to
            ``'all'``.
        loss_weight (float): Weight of the loss. A weight of 0 skips the
            computation (see ``ECELossWarmupHook``). Defaults to 1.0.
        loss_name (str): Name of the loss item; must start with ``loss_`` to
            be back-propagated. Defaults to ``'loss_ece'``.
        fused (bool): On a CUDA device with Triton installed, compute the
            per-pixel part in two fused kernels (same values to float32
            rounding); ``False`` uses PyTorch ops everywhere. Defaults to
            True.
    """

    def __init__(self,
                 n_bins: int = 10,
                 temperature: float = 1e-5,
                 class_average: str = 'all',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ece',
                 fused: bool = True) -> None:
        super().__init__()
        self.n_bins = check_n_bins(n_bins)
        if not temperature > 0:
            raise ValueError(
                f'temperature must be > 0, got temperature={temperature!r}')
        check_choice('class_average', class_average, CLASS_AVERAGES,
                     'DiffECELoss')
        self.temperature = float(temperature)
        self.class_average = class_average
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.fused = fused
        self._labels_checked = False

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Computes the weighted class-level ECE of a batch.

        Args:
            cls_score (Tensor): ``N x C x H x W`` logits, or ``N x C x P``
                logits of sampled points (PointRend's point head).
            label (Tensor): ``N x H x W`` (or ``N x P``) ground truth.
            weight (Tensor, optional): ``N x H x W`` pixel weights from a
                pixel sampler. Defaults to None.
            ignore_index (int): Label value to ignore. Defaults to 255.

        Returns:
            Tensor: Scalar loss (float32).
        """
        if cls_score.dim() == 3:  # points: one row of P pixels
            cls_score, label = cls_score[:, :, None], label[:, None]
            weight = None if weight is None else weight[:, None]
        self._check_inputs(cls_score, label, ignore_index)
        if self.loss_weight == 0:
            # Keeps the graph connected (DDP) without computing anything.
            return cls_score.sum().float() * 0
        ece = classwise_ece(
            cls_score,
            label,
            n_bins=self.n_bins,
            temperature=self.temperature,
            ignore_index=ignore_index,
            class_average=self.class_average,
            weight=weight,
            fused=self.fused)
        return self.loss_weight * ece.mean()

    def _check_inputs(self, cls_score: Tensor, label: Tensor,
                      ignore_index: int) -> None:
        """Validates shapes, and label values on CPU or on the first call
        (checking them on an accelerator would synchronise every step)."""
        if cls_score.dim() != 4 or label.shape != (cls_score.shape[0],
                                                   *cls_score.shape[2:]):
            raise ValueError(
                f'{self.__class__.__name__} expects cls_score N x C x H x W '
                f'and label N x H x W, got cls_score '
                f'{tuple(cls_score.shape)} and label {tuple(label.shape)}')
        if label.device.type == 'cpu' or not self._labels_checked:
            check_labels(label, cls_score.shape[1], ignore_index)
            self._labels_checked = True

    @property
    def loss_name(self) -> str:
        """Name of the loss item in the loss dict."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'n_bins={self.n_bins}, temperature={self.temperature}, '
                f'class_average={self.class_average!r}, '
                f'loss_weight={self.loss_weight}')
