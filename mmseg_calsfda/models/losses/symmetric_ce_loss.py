from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SymmetricCELoss(nn.Module):
    """Symmetric cross-entropy for noisy pseudo-labels (Wang et al., 2019).

    ``alpha * CE_w(z, y) + beta * RCE(z, y)`` where ``CE_w`` is the
    class-weighted cross-entropy (averaged by the weights of the labelled
    pixels, as ``F.cross_entropy(weight=...)``) and the reverse CE is
    ``mean over labelled pixels of -sum_k p_k log(clip(onehot_k, 1e-4, 1))``,
    i.e. ``-log(1e-4) * (1 - p_y)``.

    Cal-SFDA sets the class weights each round from the pseudo-label
    thresholds, ``softmax(1 / tau)`` (see :class:`CalibratedPseudoLabeler`),
    through :attr:`class_weight`.

    Args:
        alpha (float): Weight of the CE term. Defaults to 0.1.
        beta (float): Weight of the reverse CE term. Defaults to 1.0.
        class_weight (Sequence[float], optional): Initial class weights.
        label_smoothing (float): Smoothing ``eps`` in ``[0, 1)`` of the CE
            term's targets, ``(1 - eps) * onehot + eps / C``, each pixel
            weighted by its label's class weight: the CE term's optimum then
            leaves confidence below 1 instead of driving it up. The reverse CE
            keeps its hard target (a smoothed one leaves it linear in
            ``p_y``). 0 is the reference. An option for experiments (the lab);
            the shipped recipe leaves it at its default. Defaults to 0.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item. Defaults to 'loss_sce'.
    """

    def __init__(self,
                 alpha: float = 0.1,
                 beta: float = 1.0,
                 class_weight: Optional[Sequence[float]] = None,
                 label_smoothing: float = 0.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_sce') -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(
                'SymmetricCELoss: label_smoothing must lie in [0, 1), got '
                f'label_smoothing={label_smoothing!r}')
        self.alpha = alpha
        self.beta = beta
        self.label_smoothing = float(label_smoothing)
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def class_weight(self) -> Optional[Tensor]:
        return self._class_weight

    @class_weight.setter
    def class_weight(self, value: Union[None, Sequence[float], Tensor]):
        self._class_weight = None if value is None else torch.as_tensor(
            value, dtype=torch.float32)

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Args: ``cls_score`` N x C x H x W logits, ``label`` N x H x W
        pseudo-labels; pixels labelled outside ``[0, C)`` (``ignore_index``,
        padding) are left out. Returns the scalar loss."""
        cls_score = cls_score.float()
        class_weight = None
        if self._class_weight is not None:
            class_weight = self._class_weight.to(cls_score.device)
            if len(class_weight) != cls_score.shape[1]:
                raise ValueError(
                    f'SymmetricCELoss: {len(class_weight)} class weights for '
                    f'{cls_score.shape[1]} classes')
        # ignore_index, padding and any other value outside [0, C) are
        # left out
        valid = (label >= 0) & (label < cls_score.shape[1])
        target = torch.where(valid, label, 0).long()
        ce = self._ce(cls_score, target, valid, class_weight)
        p_true = F.softmax(cls_score, dim=1).gather(1, target[:, None])[:, 0]
        rce_per_pixel = -torch.log(torch.tensor(1e-4)) * (1 - p_true)
        rce = (rce_per_pixel * valid).sum() / valid.sum().clamp(min=1)
        return self.loss_weight * (self.alpha * ce + self.beta * rce)

    def _ce(self, cls_score: Tensor, target: Tensor, valid: Tensor,
            class_weight: Optional[Tensor]) -> Tensor:
        """The CE term: each labelled pixel's (smoothed) CE weighted by its
        label's class weight, averaged by those weights (as
        ``F.cross_entropy(weight=...)``). A batch whose labelled pixels weigh
        nothing (none labelled, or only classes whose weight underflowed to
        0) gives 0, where ``F.cross_entropy`` gives 0 / 0 = NaN (and so does
        the reference)."""
        log_p = F.log_softmax(cls_score, dim=1)
        per_pixel = -log_p.gather(1, target[:, None])[:, 0]
        if self.label_smoothing > 0:
            # not F.cross_entropy's smoothing: it weighs each class's
            # smoothing term by that class's weight but averages by the
            # labelled classes' weights, which explodes when the labelled
            # classes weigh little
            per_pixel = (1 - self.label_smoothing) * per_pixel \
                - self.label_smoothing * log_p.mean(1)
        weight = valid.float()
        if class_weight is not None:
            weight = weight * class_weight[target]
        total = weight.sum()
        # no host sync: a zero total divides a zero sum by 1
        return (per_pixel * weight).sum() / torch.where(
            total > 0, total, torch.ones_like(total))

    @property
    def loss_name(self) -> str:
        return self._loss_name
