from typing import List, Optional

import torch
import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList, add_prefix
from torch import Tensor

from ...calibration import CLASS_AVERAGES, check_n_bins, classwise_ece

STAGES = ('source', 'value', 'target')


def has_value_head(checkpoint: dict) -> bool:
    """Whether a checkpoint (or a bare state dict) holds the weights of a
    :class:`CalSFDASegmentor`'s value head, i.e. comes from stage 2 or 3."""
    state = checkpoint.get('state_dict', checkpoint)
    return any(key.startswith('value_head.') for key in state)


@MODELS.register_module()
class CalSFDASegmentor(EncoderDecoder):
    """Encoder-decoder with an ECE value head, for every Cal-SFDA stage.

    Backbone, decode head and value head live in one model, so one
    checkpoint holds all three. ``stage`` selects what :meth:`loss` trains:

    * ``'source'``: the decode head's losses (e.g. CE + DiffECE); the value
      head, if any, is not trained;
    * ``'value'``: the value head regresses the *detached* per-image
      class-level ECE of the current prediction against the labels (MSE). The
      segmentor is frozen (no gradients, BatchNorm in eval mode) unless
      ``freeze_segmentor=False``, which lets the MSE reach the backbone as in
      the reference code;
    * ``'target'``: the decode head's losses on pseudo-labels; the value head
      is frozen (it never trains on target data).

    :meth:`predict` works as in MMSeg and, with a value head, also puts the
    estimate in each data sample's metainfo as ``est_ece``.

    Args:
        value_head (dict, optional): Config of the value head, e.g.
            ``dict(type='ECEValueNetHead', in_channels=2048)``.
        stage (str): ``'source'``, ``'value'`` or ``'target'``.
        freeze_segmentor (bool): In the value stage, train only the value
            head. Defaults to True.
        ece_n_bins (int): Bins of the value head's target ECE. Defaults to 10.
        ece_temperature (float, optional): LogSumExp temperature of the
            target's confidence (None: max probability). Defaults to 1e-5.
        ece_class_average (str): ``'all'`` or ``'present'``.
        **kwargs: Arguments of :class:`EncoderDecoder`.
    """

    def __init__(self,
                 value_head: Optional[dict] = None,
                 stage: str = 'source',
                 freeze_segmentor: bool = True,
                 ece_n_bins: int = 10,
                 ece_temperature: Optional[float] = 1e-5,
                 ece_class_average: str = 'all',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if stage not in STAGES:
            raise ValueError(f'stage must be one of {STAGES}, got {stage!r}')
        if ece_class_average not in CLASS_AVERAGES:
            raise ValueError(f'ece_class_average must be one of '
                             f'{CLASS_AVERAGES}, got {ece_class_average!r}')
        if stage == 'value' and value_head is None:
            raise ValueError("stage='value' needs a value_head, e.g. "
                             "dict(type='ECEValueNetHead', in_channels=2048)")
        self.value_head = MODELS.build(value_head) if value_head else None
        self.stage = stage
        self.freeze_segmentor = freeze_segmentor
        self.ece_n_bins = check_n_bins(ece_n_bins)
        self.ece_temperature = ece_temperature
        self.ece_class_average = ece_class_average
        # set by SelfTrainingHook: more modules kept in eval mode
        self.extra_frozen: List[str] = []
        for module in self.frozen_modules():
            module.requires_grad_(False)

    @property
    def with_value_head(self) -> bool:
        return self.value_head is not None

    def frozen_modules(self) -> List[nn.Module]:
        """Modules that neither train nor update BatchNorm statistics."""
        if self.stage == 'value' and self.freeze_segmentor:
            names = ('backbone', 'neck', 'decode_head', 'auxiliary_head')
            return [getattr(self, n) for n in names
                    if getattr(self, n, None) is not None]
        frozen = [getattr(self, name) for name in self.extra_frozen]
        if self.stage == 'target' and self.with_value_head:
            frozen.append(self.value_head)
        return frozen

    def train(self, mode: bool = True) -> 'CalSFDASegmentor':
        """Sets the training mode, keeping frozen modules in eval mode."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of the current stage (see the class docstring)."""
        if self.stage != 'value':
            return super().loss(inputs, data_samples)
        with torch.set_grad_enabled(not self.freeze_segmentor):
            feats = self.extract_feat(inputs)
            seg_logits = self.decode_head.forward(feats)
        target = self.true_ece(seg_logits, data_samples)
        return add_prefix(self.value_head.loss(feats, target), 'value')

    def true_ece(self, seg_logits: Tensor,
                 data_samples: SampleList) -> Tensor:
        """Detached per-image class-level ECE of ``seg_logits`` against the
        ground truth (the value head's regression target)."""
        head = self.decode_head
        label = head._stack_batch_gt(data_samples)
        seg_logits = resize(
            seg_logits.detach(), size=label.shape[2:], mode='bilinear',
            align_corners=head.align_corners)
        return classwise_ece(
            seg_logits,
            label.squeeze(1),
            n_bins=self.ece_n_bins,
            temperature=self.ece_temperature,
            ignore_index=head.ignore_index,
            class_average=self.ece_class_average).detach()

    def estimate_ece(self, inputs: Tensor) -> Tensor:
        """Label-free per-image ECE estimates (``N``) of normalised inputs."""
        if not self.with_value_head:
            raise RuntimeError(
                'estimate_ece needs a value head: train one with a stage-2 '
                "config (model.stage='value', e.g. "
                'configs/calsfda/deeplabv2_r101_gta5_value.py)')
        return self.value_head(self.extract_feat(inputs)).squeeze(1)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """MMSeg's prediction, plus ``est_ece`` in each sample's metainfo
        when the model has a value head. In ``'whole'`` test mode the
        backbone runs once for both."""
        if not self.with_value_head:
            return super().predict(inputs, data_samples)
        if data_samples is None:
            data_samples = [
                SegDataSample(
                    metainfo=dict(
                        ori_shape=inputs.shape[2:],
                        img_shape=inputs.shape[2:],
                        pad_shape=inputs.shape[2:],
                        padding_size=[0, 0, 0, 0]))
                for _ in range(inputs.shape[0])
            ]
        batch_img_metas = [sample.metainfo for sample in data_samples]
        feats = self.extract_feat(inputs)
        if self.test_cfg.get('mode', 'whole') == 'whole':
            seg_logits = self.decode_head.predict(feats, batch_img_metas,
                                                  self.test_cfg)
        else:
            seg_logits = self.inference(inputs, batch_img_metas)
        estimates = self.value_head(feats).squeeze(1).float().cpu().tolist()
        results = self.postprocess_result(seg_logits, data_samples)
        for sample, estimate in zip(results, estimates):
            sample.set_metainfo(dict(est_ece=estimate))
        return results
