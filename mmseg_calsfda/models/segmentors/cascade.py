"""A cascade of decode heads, as MMSeg's ``CascadeEncoderDecoder`` runs it
(OCRNet, PointRend): :class:`CalSFDASegmentor` with ``num_stages`` keeps
its heads in a :class:`CascadeHeads` and leaves the cascade to it."""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmseg.models.decode_heads import PointHead
from mmseg.registry import MODELS
from mmseg.utils import SampleList, add_prefix
from torch import Tensor


def check_num_stages(num_stages: Optional[int],
                     decode_head) -> Optional[int]:
    """A cascade has a list of ``num_stages`` heads, one head has no
    ``num_stages``.

    Args:
        num_stages (int, optional): The model's ``num_stages``.
        decode_head (dict | list[dict]): The model's ``decode_head``.

    Returns:
        int, optional: ``num_stages``.

    Raises:
        ValueError: If the two disagree, naming both.
    """
    is_list = isinstance(decode_head, (list, tuple))
    if num_stages is None and not is_list:
        return None
    if not is_list or len(decode_head) != num_stages:
        found = len(decode_head) if is_list else 'one dict'
        raise ValueError(
            f'model.num_stages = {num_stages!r} but model.decode_head '
            f'is {found}: a cascade (CascadeEncoderDecoder) lists '
            'num_stages heads; one head takes no num_stages')
    return num_stages


def stage_forward(head: nn.Module, feats: Sequence[Tensor],
                  prev: Optional[Tensor]) -> Tensor:
    """One cascade stage: the first reads the features only, the others
    also the previous stage's logits."""
    return head.forward(feats) if prev is None else head.forward(feats, prev)


class CascadeHeads(nn.ModuleList):
    """The decode heads of a cascade, run in turn, each on the previous
    one's logits (the first on the features alone).

    A plain ``nn.ModuleList``, as ``CascadeEncoderDecoder.decode_head`` is:
    the same checkpoint keys (``decode_head.<i>.*``), the same
    initialisation, and MMSeg's own code can index it.
    """

    @classmethod
    def build(cls, cfgs: List[dict]) -> 'CascadeHeads':
        """Builds the heads of ``cfgs``, in order."""
        return cls(MODELS.build(cfg) for cfg in cfgs)

    @property
    def final(self) -> nn.Module:
        """The head that makes the final semantic logits."""
        return self[-1]

    def logits(self, feats: Sequence[Tensor],
               batch_img_metas: Optional[List[dict]],
               test_cfg: dict) -> Tensor:
        """The final head's logits. PointRend's point head refines its
        input by subdivision at the input size (from
        ``batch_img_metas``, with ``test_cfg``)."""
        out = None
        for head in self[:-1]:
            out = stage_forward(head, feats, out)
        if isinstance(self.final, PointHead):
            if batch_img_metas is None:
                raise ValueError('PointRend refines logits at the input '
                                 'size: decode_logits needs batch_img_metas')
            return self.final.predict(feats, out, batch_img_metas, test_cfg)
        return self.final.forward(feats, out)

    def loss(self, inputs: Sequence[Tensor], data_samples: SampleList,
             train_cfg: dict) -> dict:
        """Every stage's losses (``decode_<i>.*``), each stage on the
        previous one's output, as ``CascadeEncoderDecoder`` trains."""
        losses = dict()
        out = None
        for i, head in enumerate(self):
            if out is None:
                loss = head.loss(inputs, data_samples, train_cfg)
            else:
                loss = head.loss(inputs, out, data_samples, train_cfg)
            losses.update(add_prefix(loss, f'decode_{i}'))
            if i < len(self) - 1:
                out = stage_forward(head, inputs, out)
        return losses
