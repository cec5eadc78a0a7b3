"""Padded pixels of target batches: a label value of their own.

A target batch is padded to the crop size by the data preprocessor. The
shipped target configs pad the pseudo-label maps with :data:`PADDING_LABEL`
(``data_preprocessor.seg_pad_val``) rather than with ``ignore_index``, so
that the target losses can tell padding (not image: left out) from
unselected pixels (image without a pseudo-label: the label-free losses
still act on them). The two must agree: before training,
:func:`mmseg_calsfda.config_check.check_model` names a loss whose
``padding_label`` is not ``data_preprocessor.seg_pad_val``.
"""
from typing import Optional

from torch import Tensor

PADDING_LABEL = 254


def image_mask(label: Optional[Tensor],
               padding_label: Optional[int]) -> Optional[Tensor]:
    """``N x H x W`` bool, True where a pixel is image (not padding); None
    when every pixel is (no labels, or ``padding_label`` is None)."""
    if label is None or padding_label is None:
        return None
    return label != padding_label


def masked_mean(values: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Mean of ``values`` over ``mask`` (all elements if None; 0 if the
    mask is empty)."""
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.sum().clamp(min=1)
