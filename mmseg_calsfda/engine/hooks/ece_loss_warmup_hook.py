from typing import Dict, Optional, Sequence

from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch import nn

from ...models.losses import DiffECELoss
from ...utils import unwrap_model


@HOOKS.register_module()
class ECELossWarmupHook(Hook):
    """Switches the :class:`DiffECELoss` terms on at ``start_iter``.

    Before ``start_iter`` the weight of every ``DiffECELoss`` in the model is
    0 (the loss then skips its computation); from ``start_iter`` on it is the
    weight from the config. Stateless, so it is correct after a resume.

    Args:
        start_iter (int): First iteration (0-based) that uses the ECE loss.
            Defaults to 0 (the reference).
    """
    priority = 'NORMAL'

    def __init__(self, start_iter: int = 0) -> None:
        if start_iter < 0:
            raise ValueError(f'start_iter must be >= 0, got {start_iter}')
        self.start_iter = start_iter
        self._weights: Optional[Dict[DiffECELoss, float]] = None

    def _ece_losses(self, model: nn.Module) -> Dict[DiffECELoss, float]:
        return {m: m.loss_weight for m in unwrap_model(model).modules()
                if isinstance(m, DiffECELoss)}

    def before_train(self, runner) -> None:
        self._weights = self._ece_losses(runner.model)
        if not self._weights:
            raise ValueError('ECELossWarmupHook is configured but the model '
                             'has no DiffECELoss in any loss_decode')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[Sequence[dict]] = None) -> None:
        active = runner.iter >= self.start_iter
        for loss, weight in self._weights.items():
            loss.loss_weight = weight if active else 0.
