from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList, add_prefix
from torch import Tensor

from ...calibration import CLASS_AVERAGES, check_n_bins, classwise_ece
from ...config_check import check_choice

STAGES = ('source', 'value', 'target')
VALUE_INPUTS = ('backbone', 'probs')


def has_value_head(checkpoint: dict) -> bool:
    """Whether a checkpoint (or a bare state dict) holds the weights of a
    :class:`CalSFDASegmentor`'s value head, i.e. comes from stage 2 or 3."""
    state = checkpoint.get('state_dict', checkpoint)
    return any(key.startswith('value_head.') for key in state)


def value_head_reads_backbone(model_cfg: dict) -> bool:
    """Whether a :class:`CalSFDASegmentor` config has a value head that reads
    a backbone feature map, so that its ``in_channels`` follow the backbone
    (with ``value_input='probs'`` they follow ``num_classes``)."""
    return bool(model_cfg.get('value_head')) and model_cfg.get(
        'value_input', 'backbone') == 'backbone'


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

    ``value_input`` chooses what the value head reads: the backbone outputs
    (the reference) or the decode head's class probabilities at its own
    resolution, a ``(softmax(logits), )`` tuple -- then the value head's
    ``in_channels`` is the number of classes and may be left out.

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
        value_input (str): ``'backbone'`` or ``'probs'`` (see above).
            Defaults to ``'backbone'``.
        **kwargs: Arguments of :class:`EncoderDecoder`.
    """

    def __init__(self,
                 value_head: Optional[dict] = None,
                 stage: str = 'source',
                 freeze_segmentor: bool = True,
                 ece_n_bins: int = 10,
                 ece_temperature: Optional[float] = 1e-5,
                 ece_class_average: str = 'all',
                 value_input: str = 'backbone',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        check_choice('stage', stage, STAGES)
        check_choice('value_input', value_input, VALUE_INPUTS)
        check_choice('ece_class_average', ece_class_average, CLASS_AVERAGES)
        if stage == 'value' and value_head is None:
            raise ValueError("stage='value' needs a value_head, e.g. "
                             "dict(type='ECEValueNetHead', in_channels=2048)")
        self.value_input = value_input
        self.value_head = MODELS.build(
            self._value_head_cfg(value_head)) if value_head else None
        self.stage = stage
        self.freeze_segmentor = freeze_segmentor
        self.ece_n_bins = check_n_bins(ece_n_bins)
        self.ece_temperature = ece_temperature
        self.ece_class_average = ece_class_average
        # set by SelfTrainingHook: more modules kept in eval mode
        self.extra_frozen: List[str] = []
        for module in self.frozen_modules():
            module.requires_grad_(False)

    def _value_head_cfg(self, cfg: dict) -> dict:
        """With ``value_input='probs'`` the head reads one map of
        ``num_classes`` channels."""
        if self.value_input == 'backbone':
            return cfg
        classes = self.decode_head.num_classes
        if (cfg.get('in_channels', classes) != classes
                or cfg.get('in_index', -1) not in (0, -1)):
            raise ValueError(
                "value_input='probs': the value head reads one map of "
                f'{classes} class probabilities; leave value_head.'
                'in_channels and in_index out (got in_channels='
                f"{cfg.get('in_channels')!r}, in_index="
                f"{cfg.get('in_index')!r})")
        return dict(cfg, in_channels=classes, in_index=-1)

    @property
    def with_value_head(self) -> bool:
        return self.value_head is not None

    def value_inputs(self,
                     feats: Sequence[Tensor],
                     seg_logits: Optional[Tensor] = None) -> Tuple[Tensor]:
        """What the value head reads (see ``value_input``).

        Args:
            feats (tuple[Tensor]): Backbone (and neck) outputs.
            seg_logits (Tensor, optional): The decode head's output on
                ``feats``, if already computed.

        Returns:
            tuple[Tensor]: ``feats``, or ``(softmax(seg_logits), )``.
        """
        if self.value_input == 'backbone':
            return feats
        if seg_logits is None:
            seg_logits = self.decode_head.forward(feats)
        return (seg_logits.softmax(dim=1, dtype=torch.float32), )

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
        losses = self.value_head.loss(
            self.value_inputs(feats, seg_logits), target)
        return add_prefix(losses, 'value')

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
        feats = self.extract_feat(inputs)
        return self.value_head(self.value_inputs(feats)).squeeze(1)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """MMSeg's prediction, plus ``est_ece`` (a 0-dim float32 tensor
        on the model's device) in each sample's metainfo when the model has
        a value head. In ``'whole'`` test mode the
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
        logits = None
        if self.test_cfg.get('mode', 'whole') == 'whole':
            logits = self.decode_head.forward(feats)
            seg_logits = self.decode_head.predict_by_feat(
                logits, batch_img_metas)
        else:
            seg_logits = self.inference(inputs, batch_img_metas)
        # kept on the device, as seg_logits are: reading them back here
        # would make the host wait for the network on every batch
        estimates = self.value_head(self.value_inputs(feats, logits))
        estimates = estimates.squeeze(1).float()
        results = self.postprocess_result(seg_logits, data_samples)
        for sample, estimate in zip(results, estimates):
            sample.set_metainfo(dict(est_ece=estimate))
        return results
