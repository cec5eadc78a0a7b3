from typing import Sequence, Tuple

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class DLV2Head(BaseDecodeHead):
    """DeepLabV2 classifier (ASPP-V2).

    The sum of parallel 3x3 convolutions with different dilations, each from
    the input feature straight to ``num_classes`` logits: no BatchNorm, no
    activation, no extra 3x3 convolution (Chen et al., TPAMI 2017). The
    parallel convolutions take the place of ``conv_seg``, so the usual
    ``Normal(std=0.01)`` initialisation of ``conv_seg`` applies to them.

    Args:
        dilations (Sequence[int]): Dilation of each branch.
            Defaults to (6, 12, 18, 24).
        **kwargs: Arguments of :class:`BaseDecodeHead`. ``channels`` is
            unused (the branches map ``in_channels`` to ``num_classes``) and
            defaults to ``in_channels``; ``dropout_ratio`` defaults to 0.
    """

    def __init__(self, dilations: Sequence[int] = (6, 12, 18, 24), **kwargs):
        if kwargs.get('input_transform') is not None:
            raise ValueError('DLV2Head takes a single feature map; got '
                             f'input_transform={kwargs["input_transform"]!r}')
        kwargs.setdefault('channels', kwargs.get('in_channels'))
        kwargs.setdefault('dropout_ratio', 0.)
        super().__init__(**kwargs)
        if len(dilations) == 0:
            raise ValueError('dilations must name at least one dilation')
        self.dilations = tuple(dilations)
        self.conv_seg = nn.ModuleList(
            nn.Conv2d(
                self.in_channels,
                self.out_channels,
                kernel_size=3,
                padding=dilation,
                dilation=dilation) for dilation in self.dilations)

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Sums the dilated branches into per-pixel logits."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        out = self.conv_seg[0](feat)
        for conv in self.conv_seg[1:]:
            out = out + conv(feat)
        return out

    def forward(self, inputs: Tuple[Tensor]) -> Tensor:
        """Returns the logits of the selected feature map."""
        return self.cls_seg(self._transform_inputs(inputs))
