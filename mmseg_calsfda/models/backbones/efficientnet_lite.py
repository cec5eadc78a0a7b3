"""EfficientNet-Lite backbone with TensorFlow "same" padding and dilation."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner import CheckpointLoader
from mmseg.models.utils import make_divisible
from mmseg.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils import check_choice
from .efficientnet_lite_checkpoint import (
    HEAD_PREFIX,
    convert_efficientnet_lite,
)

# (expand ratio, kernel, stride, out channels, repeats) of the seven stages
# of EfficientNet-B0, which the Lite variants scale.
BASE_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2),
               (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
               (6, 3, 1, 320, 1))
STEM_CHANNELS = 32  # the Lite variants keep the stem (and head) unscaled


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's ``padding='SAME'``.

    The padding is computed from the input size at run time, as TensorFlow
    does: ``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` in all,
    the extra pixel of an odd total on the bottom/right. The ImageNet
    weights were trained with it; symmetric padding shifts every stride-2
    layer by half a pixel.
    """

    def _pad(self, size: int, dim: int) -> Tuple[int, int]:
        stride, kernel = self.stride[dim], self.kernel_size[dim]
        dilation = self.dilation[dim]
        total = max((math.ceil(size / stride) - 1) * stride +
                    (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pad(x.shape[-2], 0)
        left, right = self._pad(x.shape[-1], 1)
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


class ConvNormAct(nn.Module):
    """Convolution ("same" padding, no bias), norm layer, activation.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel size.
        stride (int): Stride.
        dilation (int): Dilation.
        groups (int): Convolution groups (``in_channels``: depthwise).
        norm_cfg (dict): Norm layer config.
        act_cfg (dict, optional): Activation config; None for none.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 norm_cfg: dict,
                 act_cfg: Optional[dict],
                 stride: int = 1,
                 dilation: int = 1,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = Conv2dSame(in_channels, out_channels, kernel_size,
                               stride=stride, dilation=dilation,
                               groups=groups, bias=False)
        self.bn = build_norm_layer(norm_cfg, out_channels)[1]
        self.act = build_activation_layer(act_cfg) if act_cfg else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        expand_ratio (int): Hidden width over ``in_channels``; 1 has no
            expansion convolution.
        kernel_size (int): Depthwise kernel size.
        stride (int): Depthwise stride.
        dilation (int): Depthwise dilation.
        norm_cfg (dict): Norm layer config.
        act_cfg (dict): Activation config.
        drop_path (float): Probability of dropping the residual branch
            in training (stochastic depth); only blocks with a residual.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 expand_ratio: int, kernel_size: int, stride: int,
                 dilation: int, norm_cfg: dict, act_cfg: dict,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = ConvNormAct(in_channels, hidden, 1, norm_cfg,
                                  act_cfg) if expand_ratio != 1 else None
        self.depthwise = ConvNormAct(hidden, hidden, kernel_size, norm_cfg,
                                     act_cfg, stride=stride,
                                     dilation=dilation, groups=hidden)
        self.project = ConvNormAct(hidden, out_channels, 1, norm_cfg, None)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_path = drop_path if self.residual else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        if not self.residual:
            return out
        if self.training and self.drop_path > 0:
            keep = 1 - self.drop_path
            mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
            out = out * mask / keep
        return x + out


@MODELS.register_module()
class EfficientNetLite(BaseModule):
    """EfficientNet-Lite backbone (`EfficientNet <https://arxiv.org/abs/
    1905.11946>`_ without squeeze-excitation, ReLU6, fixed stem and head).

    Matches the ImageNet weights of the ``efficientnet-lite{0,1,2}-pytorch-
    model`` packages: TensorFlow "same" padding, BatchNorm eps 1e-3, ReLU6,
    inputs scaled to [-1, 1] (data preprocessor mean = std = 127.5, RGB).
    Load them with ``init_cfg=dict(type='Pretrained',
    checkpoint='efficientnet-lite://lite0')``; loading is strict: a tensor of
    the file (classifier tail aside) that the backbone does not use, a
    parameter or buffer the file lacks, or a shape that differs is an error.

    Stage ``i`` outputs (lite0/lite1; lite2 is wider) at the default
    strides: 16 /2, 24 /4, 40 /8, 80 /16, 112 /16, 192 /32, 320 /32
    channels/stride. As MMSeg's ``MobileNetV2``, ``strides`` and
    ``dilations`` set each stage's first stride and its dilation, e.g.
    output stride 8 with ``strides=(1, 2, 2, 1, 1, 1, 1)``,
    ``dilations=(1, 1, 1, 2, 2, 4, 4)``. A stage's first block keeps the
    previous stage's dilation (as torchvision's
    ``replace_stride_with_dilation``), so a dilated network computes, on its
    finer grid, exactly what the strided one computes.

    Args:
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``.
        strides (Sequence[int]): First-block stride of each of the 7 stages.
        dilations (Sequence[int]): Dilation of each stage.
        out_indices (Sequence[int]): Stages whose outputs are returned.
        frozen_stages (int): -1 freezes nothing; ``k >= 0`` freezes the stem
            and the first ``k`` stages (parameters and norm statistics).
        norm_cfg (dict): Norm layer config (eps 1e-3 as the weights).
        act_cfg (dict): Activation config.
        norm_eval (bool): Keep norm layers in eval mode in training.
        drop_path_rate (float): Stochastic depth of the last block; block
            ``i`` of ``n`` drops with ``rate * i / n``.
        init_cfg (dict or list[dict], optional): Initialisation config.
    """

    arch_settings: Dict[str, Tuple[float, float]] = {
        # width multiplier, depth multiplier
        'lite0': (1.0, 1.0),
        'lite1': (1.0, 1.1),
        'lite2': (1.1, 1.2),
    }

    def __init__(self,
                 arch: str = 'lite0',
                 strides: Sequence[int] = (1, 2, 2, 2, 1, 2, 1),
                 dilations: Sequence[int] = (1, 1, 1, 1, 1, 1, 1),
                 out_indices: Sequence[int] = (1, 2, 4, 6),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN', eps=1e-3,
                                       requires_grad=True),
                 act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer=['_BatchNorm'])
            ]
        super().__init__(init_cfg)
        self._check_args(arch, strides, dilations, out_indices,
                         frozen_stages)
        self.arch = arch
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.stem = ConvNormAct(3, STEM_CHANNELS, 3, norm_cfg, act_cfg,
                                stride=2)
        self.blocks = nn.ModuleList()
        self.stage_ends: List[int] = []
        self.out_channels: List[int] = []
        self._build_stages(strides, dilations, norm_cfg, act_cfg,
                           drop_path_rate)

    def _check_args(self, arch: str, strides: Sequence[int],
                    dilations: Sequence[int], out_indices: Sequence[int],
                    frozen_stages: int) -> None:
        check_choice('arch', arch, tuple(self.arch_settings),
                     'EfficientNetLite')
        num = len(BASE_STAGES)
        for name, value in (('strides', strides), ('dilations', dilations)):
            if len(value) != num:
                raise ValueError(f'EfficientNetLite: {name}={tuple(value)} '
                                 f'needs one value per stage ({num})')
        bad = [i for i in out_indices if not 0 <= i < num]
        if bad or not out_indices:
            raise ValueError(f'EfficientNetLite: out_indices='
                             f'{tuple(out_indices)}; stages are 0..{num - 1}')
        if not -1 <= frozen_stages <= num:
            raise ValueError(f'EfficientNetLite: frozen_stages='
                             f'{frozen_stages}; valid: -1..{num}')

    def _stage_repeats(self, depth: float) -> List[int]:
        """Blocks per stage; the Lite variants keep the first and last
        stages at one block."""
        last = len(BASE_STAGES) - 1
        return [
            repeats if i in (0, last) else int(math.ceil(repeats * depth))
            for i, (*_, repeats) in enumerate(BASE_STAGES)
        ]

    def _build_stages(self, strides: Sequence[int],
                      dilations: Sequence[int], norm_cfg: dict,
                      act_cfg: dict, drop_path_rate: float) -> None:
        width, depth = self.arch_settings[self.arch]
        repeats = self._stage_repeats(depth)
        total, in_channels, previous_dilation = sum(repeats), STEM_CHANNELS, 1
        for stage, (expand, kernel, _, channels, _) in enumerate(BASE_STAGES):
            # EfficientNet's rounding: a multiple of 8, >= 90 %
            out_channels = make_divisible(channels * width, 8)
            for j in range(repeats[stage]):
                index = len(self.blocks)
                self.blocks.append(
                    MBConv(in_channels, out_channels, expand, kernel,
                           stride=strides[stage] if j == 0 else 1,
                           dilation=(previous_dilation
                                     if j == 0 else dilations[stage]),
                           norm_cfg=norm_cfg, act_cfg=act_cfg,
                           drop_path=drop_path_rate * index / total))
                in_channels = out_channels
            previous_dilation = dilations[stage]
            self.stage_ends.append(len(self.blocks))
            self.out_channels.append(out_channels)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Features of the stages in ``out_indices``.

        Args:
            x (Tensor): N x 3 x H x W images, scaled to [-1, 1].

        Returns:
            tuple[Tensor]: One map per entry of ``out_indices``.
        """
        x = self.stem(x)
        by_stage, stage = {}, 0
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index + 1 == self.stage_ends[stage]:
                if stage in self.out_indices:
                    by_stage[stage] = x
                if stage == max(self.out_indices):
                    break
                stage += 1
        return tuple(by_stage[i] for i in self.out_indices)

    # ------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Loads ImageNet weights strictly when ``init_cfg`` is
        ``Pretrained``; otherwise MMEngine's initialisation."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self._load_pretrained(cfg['checkpoint'], cfg.get('prefix'))
            self._is_init = True
        else:
            super().init_weights()

    def _load_pretrained(self, checkpoint: str,
                         prefix: Optional[str] = None) -> None:
        loaded = CheckpointLoader.load_checkpoint(checkpoint,
                                                  map_location='cpu')
        state = loaded.get('state_dict', loaded)
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items()
                     if k.startswith(prefix)}
        if any(key.startswith('_conv_stem') for key in state):
            state = convert_efficientnet_lite(state)
        features = {k: v for k, v in state.items()
                    if not k.startswith(HEAD_PREFIX)}
        self._check_complete(checkpoint, features)
        self.load_state_dict(features, strict=True)
        print_log(f'EfficientNetLite({self.arch}): loaded all '
                  f'{len(features)} feature tensors of {checkpoint} '
                  f'({len(state) - len(features)} classifier tensors '
                  'unused)', logger='current')

    def _check_complete(self, checkpoint: str,
                        features: Dict[str, torch.Tensor]) -> None:
        """Every feature tensor of the file must land in the backbone and
        every backbone tensor must come from the file, with equal shapes."""
        own = self.state_dict()
        unused = sorted(set(features) - set(own))
        missing = sorted(set(own) - set(features))
        shapes = sorted(
            f'{k}: file {tuple(features[k].shape)}, backbone '
            f'{tuple(own[k].shape)}' for k in set(own) & set(features)
            if features[k].shape != own[k].shape)
        problems = []
        for what, keys in (('unused by the backbone', unused),
                           ('missing from the file', missing),
                           ('of another shape', shapes)):
            if keys:
                shown = ', '.join(keys[:5])
                more = f' and {len(keys) - 5} more' if len(keys) > 5 else ''
                problems.append(f'{len(keys)} tensors {what}: {shown}{more}')
        if problems:
            raise RuntimeError(
                f'EfficientNetLite(arch={self.arch!r}) cannot load '
                f'{checkpoint} completely -- ' + '; '.join(problems) +
                '. Is arch the one the weights were trained for?')

    # ------------------------------------------------------------ training
    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        modules = [self.stem]
        end = self.stage_ends[self.frozen_stages - 1] \
            if self.frozen_stages > 0 else 0
        modules += list(self.blocks[:end])
        for module in modules:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        """Sets train mode, keeping frozen stages (and, with ``norm_eval``,
        every norm layer) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
