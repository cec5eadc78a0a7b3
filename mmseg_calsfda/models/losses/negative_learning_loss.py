from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .padding import PADDING_LABEL, image_mask, masked_mean


@MODELS.register_module()
class NegativeLearningLoss(nn.Module):
    """Negative learning: push down a class the pixel is probably *not*.

    Each call draws ``k = floor(C / 2) + U{-k_range, ..., k_range}``, takes
    ``n``, the k-th most probable class of every pixel, and returns
    ``-mean log(clip(1 - p_n, 1e-5, 1))`` over all image pixels (padded
    pixels, label ``padding_label``, are left out).

    The draws come from a CPU generator of the loss's own, seeded from
    torch's global generator when the loss is built (so by the Runner's
    ``randomness``) and stepped once per call. Its seed and the number of
    draws so far are a buffer of the model (``rng_state``, saved in every
    checkpoint), so a run resumed from a checkpoint draws what the
    uninterrupted run would have. The draw itself reads no device memory.

    Args:
        k_range (int): Half-width of the random offset. Defaults to 3.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        padding_label (int, optional): Label value of padded pixels (see
            :mod:`.padding`); None counts every pixel. Defaults to 254.
        loss_name (str): Name of the loss item. Defaults to 'loss_nl'.
    """

    def __init__(self, k_range: int = 3, loss_weight: float = 1.0,
                 padding_label: Optional[int] = PADDING_LABEL,
                 loss_name: str = 'loss_nl') -> None:
        super().__init__()
        if k_range < 0:
            raise ValueError(f'k_range must be >= 0, got {k_range}')
        self.k_range = k_range
        self.loss_weight = loss_weight
        self.padding_label = padding_label
        self._loss_name = loss_name
        self.last_k: Optional[int] = None
        self.seed = int(torch.randint(2**31 - 1, ()))
        self.draws = 0
        # a copy of (seed, draws) for checkpoints; written, never read, in
        # a training step
        self.register_buffer('rng_state',
                             torch.tensor([self.seed, 0], dtype=torch.long))

    def draw_k(self, num_classes: int) -> int:
        """The rank (1-based) of the class to push down, within [1, C]."""
        generator = torch.Generator().manual_seed(self.seed + self.draws)
        self.draws += 1
        self.rng_state[1].fill_(self.draws)
        offset = int(torch.randint(-self.k_range, self.k_range + 1, (1, ),
                                   generator=generator))
        return min(max(num_classes // 2 + offset, 1), num_classes)

    def _load_from_state_dict(self, state_dict, prefix, *args,
                              **kwargs) -> None:
        """Restores the generator's seed and draws with the buffer."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + 'rng_state' in state_dict:
            self.seed, self.draws = (int(v) for v in self.rng_state.tolist())

    def forward(self,
                cls_score: Tensor,
                label: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Args: ``cls_score`` N x C x H x W logits, ``label`` N x H x W
        (only its padding is read). Returns the loss."""
        probs = F.softmax(cls_score, dim=1, dtype=torch.float32)
        self.last_k = k = self.draw_k(probs.shape[1])
        p_n = probs.topk(k, dim=1).values[:, k - 1]
        loss = -torch.log((1 - p_n).clamp(min=1e-5, max=1))
        return self.loss_weight * masked_mean(
            loss, image_mask(label, self.padding_label))

    @property
    def loss_name(self) -> str:
        return self._loss_name
