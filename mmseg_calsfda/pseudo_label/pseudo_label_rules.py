"""The three pseudo-labelling choices where the official code differs from
the recipe (docs/differences.md), in one option object."""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from ..utils import check_choice

GROWTHS = ('linear', 'reference')
SELECTIONS = ('calibrated', 'reference')
THRESHOLD_RULES = ('exact', 'reference')


@dataclass(frozen=True)
class PseudoLabelRules:
    """How :class:`CalibratedPseudoLabeler` grows ``cb_prop``, places a
    class's threshold and tests a pixel against it: the recipe's way
    (the defaults) or, per choice, the official code's (``'reference'``;
    all three: :class:`ReferencePseudoLabeler`).

    Args:
        growth (str): ``'linear'``: ``cb_prop_0 + step * r``;
            ``'reference'``: cumulative, ``cb_prop_0 + step * r (r + 1) /
            2`` (0.15, 0.20, 0.30, 0.45, ...). ``local_prop`` grows
            linearly either way.
        selection (str): ``'calibrated'``: a pixel passes if its
            ECE-scaled score ``s >= tau`` of its predicted class;
            ``'reference'``: if any class ``c`` has an *unscaled* ``p_c``
            passing ``tau_c`` (needs every class's probability).
        threshold_rule (str): ``'exact'``: ``tau_c`` is the ``ceil(cb_prop
            * n_c)``-th largest score and a pixel passes with ``>=``;
            ``'reference'``: the ``floor(cb_prop * n_c)``-th largest (the
            smallest score when that is 0) and a pixel passes with ``>``.
    """

    growth: str = 'linear'
    selection: str = 'calibrated'
    threshold_rule: str = 'exact'

    def __post_init__(self) -> None:
        check_choice('growth', self.growth, GROWTHS)
        check_choice('selection', self.selection, SELECTIONS)
        check_choice('threshold_rule', self.threshold_rule, THRESHOLD_RULES)

    @property
    def needs_probabilities(self) -> bool:
        """Whether labels need every class's probability, not only the
        top-1 confidence and prediction."""
        return self.selection == 'reference'

    def cb_prop_factor(self, round_idx: int) -> float:
        """The multiple of ``cb_prop_step`` added in round ``round_idx``."""
        if self.growth == 'reference':
            return round_idx * (round_idx + 1) / 2
        return round_idx

    def threshold_rank(self, total: Tensor, cb_prop: float) -> Tensor:
        """Per class, the ascending 0-based rank of ``tau`` among its
        ``total`` scores (``total - k`` for the ``k``-th largest)."""
        wanted = total.double() * cb_prop
        if self.threshold_rule == 'exact':
            # ceil, forgiving float error (0.15 * 100 = 15.000000000000002)
            keep = torch.ceil(wanted - 1e-6).long()
            return total - keep
        keep = torch.floor(wanted + 1e-6).long()  # the official int()
        return torch.where(keep > 0, total - keep, 0)

    def passes(self, score: Tensor, tau: Tensor) -> Tensor:
        """The threshold test: ``score >= tau``, or ``>`` (reference)."""
        if self.threshold_rule == 'reference':
            return score > tau
        return score >= tau

    def global_keep(self, score: Tensor, pred: Tensor,
                    probs: Optional[Tensor], tau: Tensor) -> Tensor:
        """Pixels that pass the global test (see ``selection``).

        Args:
            score (Tensor): ``N x H x W`` ECE-scaled top-1 scores.
            pred (Tensor): ``N x H x W`` predictions.
            probs (Tensor, optional): ``N x C x H x W`` probabilities;
                needed by the reference selection only.
            tau (Tensor): ``C`` thresholds, on the scores' device.

        Returns:
            Tensor: ``N x H x W`` bool.
        """
        if self.selection == 'calibrated':
            return self.passes(score, tau[pred.long()])
        if probs is None:
            raise RuntimeError("selection='reference' needs every class's "
                               'probability: label() the probabilities, '
                               'not their Top1')
        return self.passes(probs.float(), tau.view(1, -1, 1, 1)).any(dim=1)

