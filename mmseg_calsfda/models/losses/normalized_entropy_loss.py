from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class NormalizedEntropyLoss(nn.Module):
    """Entropy minimisation with the Cal-SFDA normalisation.

    Per pixel ``h = -sum_k p_k log p_k`` with ``p = softmax(z)``, normalised
    by the batch maximum (treated as a constant), then
    ``((h / h_max)^2 + 1e-8)^2`` averaged over all pixels. It uses no labels,
    so it acts on every pixel.

    Args:
        loss_weight (float): ``eta``; the reference never defines it. Defaults
            to 1.0.
        double_softmax (bool): Apply softmax twice, as the reference code
            does (a defect: it flattens every distribution). Defaults to
            False.
        loss_name (str): Name of the loss item. Defaults to 'loss_ent'.
    """

    def __init__(self, loss_weight: float = 1.0,
                 double_softmax: bool = False,
                 loss_name: str = 'loss_ent') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.double_softmax = double_softmax
        self._loss_name = loss_name

    def forward(self,
                cls_score: Tensor,
                label: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Args: ``cls_score`` N x C x H x W logits. Returns the loss."""
        scores = cls_score.float()
        if self.double_softmax:
            scores = F.softmax(scores, dim=1)
        log_p = F.log_softmax(scores, dim=1)
        entropy = -(log_p.exp() * log_p).sum(dim=1)
        h_max = entropy.detach().max().clamp(min=torch.finfo(
            entropy.dtype).tiny)
        return self.loss_weight * (((entropy / h_max)**2 + 1e-8)**2).mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
