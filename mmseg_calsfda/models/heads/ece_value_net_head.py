from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from ...utils import check_choice

#: How the head pools the 1x1 conv's map to ``pool_size x pool_size``.
POOLS = ('bilinear', 'avg')

@MODELS.register_module()
class ECEValueNetHead(BaseModule):
    """The Cal-SFDA "value net": predicts an image's class-level ECE.

    ``BatchNorm2d(in_channels) -> 1x1 conv (no bias) [-> activation] ->
    pool to pool_size x pool_size -> flatten -> Linear -> sigmoid``: one
    scalar in (0, 1) per image, trained on the labelled source to regress
    the image's class-level ECE (see
    :func:`mmseg_calsfda.calibration.classwise_ece`), so that ECE can be
    *estimated* on unlabelled target images. Its BatchNorm
    statistics are re-estimated on target data before use (``BNWarmupHook``).
    What it reads -- the decode head's class probabilities or a backbone
    output (the reference) -- is chosen by ``CalSFDASegmentor.value_input``;
    with the probabilities the segmentor sets ``in_channels`` and
    ``in_index``.

    Args:
        in_channels (int): Channels of the map it reads. Defaults to 2048
            (ResNet-101's last stage, for a backbone feature map).
        in_index (int): Which of the given maps to read. Defaults to -1.
        channels (int): Channels after the 1x1 conv. Defaults to 128.
        pool_size (int): Side of the resized map. Defaults to 4.
        loss_weight (float): Weight of the MSE loss. Defaults to 1.0.
        align_corners (bool): Of the bilinear resize (``pool='bilinear'``).
            Defaults to False.
        pool (str): How the map is brought to ``pool_size``: ``'avg'``
            (adaptive average pooling: every pixel counts) or
            ``'bilinear'`` (the reference: at stride 8 it samples a few
            pixels of the map). Defaults to ``'avg'``.
        act_cfg (dict, optional): An activation after the 1x1 conv, e.g.
            ``dict(type='ReLU')``. Without one (the reference) the estimate
            is a linear function of the pooled input before the sigmoid:
            reading class probabilities, it can weigh which classes are
            predicted where, but not how confident each pixel is. Defaults
            to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 in_index: int = -1,
                 channels: int = 128,
                 pool_size: int = 4,
                 loss_weight: float = 1.0,
                 align_corners: bool = False,
                 pool: str = 'avg',
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('channels', channels), ('pool_size', pool_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        check_choice('pool', pool, POOLS, 'ECEValueNetHead')
        self.pool = pool
        self.in_channels = in_channels
        self.in_index = in_index
        self.pool_size = pool_size
        self.loss_weight = loss_weight
        self.align_corners = align_corners
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.act_cfg = act_cfg
        self.act = build_activation_layer(act_cfg) if act_cfg else None
        self.fc = nn.Linear(channels * pool_size * pool_size, 1)

    def _select(self, feats: Sequence[Tensor]) -> Tensor:
        if isinstance(feats, Tensor):
            feats = (feats, )
        feat = feats[self.in_index]
        if feat.shape[1] != self.in_channels:
            raise ValueError(
                f'{self.__class__.__name__}: in_channels={self.in_channels} '
                f'but the input at in_index={self.in_index} has '
                f'{feat.shape[1]} channels')
        return feat

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Predicts the class-level ECE of each image.

        Args:
            feats (tuple[Tensor]): Backbone outputs (N x C_i x H_i x W_i).

        Returns:
            Tensor: ``N x 1`` estimates in (0, 1).
        """
        x = self.conv(self.bn(self._select(feats)))
        if self.act is not None:
            x = self.act(x)
        size = (self.pool_size, self.pool_size)
        if self.pool == 'avg':
            x = F.adaptive_avg_pool2d(x, size)
        else:
            x = F.interpolate(
                x, size=size, mode='bilinear',
                align_corners=self.align_corners)
        return torch.sigmoid(self.fc(x.flatten(1)))

    def loss(self, feats: Sequence[Tensor], target: Tensor) -> dict:
        """MSE between the estimates and a detached per-image target.

        Args:
            feats (tuple[Tensor]): Backbone outputs.
            target (Tensor): ``N`` true class-level ECE per image.

        Returns:
            dict[str, Tensor]: ``loss_value`` and, for logging, the mean
            estimate ``est_ece`` and mean target ``true_ece``.
        """
        pred = self.forward(feats).squeeze(1)
        target = target.detach().to(pred.dtype)
        return dict(
            loss_value=self.loss_weight * F.mse_loss(pred, target),
            est_ece=pred.detach().mean(),
            true_ece=target.mean())
