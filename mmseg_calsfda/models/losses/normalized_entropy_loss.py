from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .padding import PADDING_LABEL, image_mask, masked_mean


@MODELS.register_module()
class NormalizedEntropyLoss(nn.Module):
    """Entropy minimisation with the Cal-SFDA normalisation.

    Per pixel ``h = -sum_k p_k log p_k`` with ``p = softmax(z)``, normalised
    by its maximum over the batch's image pixels (treated as a constant),
    then ``((h / h_max)^2 + 1e-8)^2`` averaged over those pixels. It uses
    no labels: it acts on every image pixel, selected or not; padded pixels
    (label ``padding_label``) are left out.

    Args:
        loss_weight (float): ``eta``; the reference never defines it. Defaults
            to 1.0.
        double_softmax (bool): The reference code's term instead: with ``q =
            softmax(z)``, ``h = -sum_k q_k log softmax(q)_k``, normalised by
            its maximum with the gradient flowing through the maximum too.
            Defaults to False.
        padding_label (int, optional): Label value of padded pixels (see
            :mod:`.padding`); None counts every pixel. Defaults to 254.
        loss_name (str): Name of the loss item. Defaults to 'loss_ent'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 double_softmax: bool = False,
                 padding_label: Optional[int] = PADDING_LABEL,
                 loss_name: str = 'loss_ent') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.double_softmax = double_softmax
        self.padding_label = padding_label
        self._loss_name = loss_name

    def forward(self,
                cls_score: Tensor,
                label: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Args: ``cls_score`` N x C x H x W logits, ``label`` N x H x W
        (only its padding is read). Returns the loss."""
        entropy = self.entropy(cls_score)
        mask = image_mask(label, self.padding_label)
        image = entropy if mask is None else entropy[mask]
        h_max = image.max() if image.numel() else entropy.new_ones(())
        if not self.double_softmax:
            h_max = h_max.detach()
        h_max = h_max.clamp(min=torch.finfo(entropy.dtype).tiny)
        per_pixel = ((entropy / h_max)**2 + 1e-8)**2
        return self.loss_weight * masked_mean(per_pixel, mask)

    def entropy(self, cls_score: Tensor) -> Tensor:
        """The per-pixel term ``h`` (``N x H x W``, float32)."""
        probs = F.softmax(cls_score, dim=1, dtype=torch.float32)
        if self.double_softmax:  # the reference: q . log softmax(q)
            return -(probs * F.log_softmax(probs, dim=1)).sum(dim=1)
        log_p = F.log_softmax(cls_score, dim=1, dtype=torch.float32)
        return -(probs * log_p).sum(dim=1)

    @property
    def loss_name(self) -> str:
        return self._loss_name
