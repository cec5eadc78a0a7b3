from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList, add_prefix
from torch import Tensor

from ...calibration import CLASS_AVERAGES, check_n_bins, classwise_ece
from ...utils import check_choice
from .cascade import CascadeHeads, check_num_stages
from .head_losses import with_head_losses

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
        'value_input', 'probs') == 'backbone'


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

    ``value_input`` chooses what the value head reads: the decode head's
    class probabilities at its own resolution, a ``(softmax(logits), )``
    tuple (the value head's ``in_channels`` is then the number of classes
    and may be left out), or the backbone outputs (the reference; the value
    head's ``in_channels``/``in_index`` then name a backbone feature map).

    :meth:`predict` works as in MMSeg and, with a value head, also puts the
    estimate in each data sample's metainfo as ``est_ece`` (a fraction;
    :class:`~mmseg_calsfda.apis.CalSFDAInferencer` gives it in percent).

    Any MMSeg network works as the encoder-decoder: set this type in place of
    ``EncoderDecoder`` or ``CascadeEncoderDecoder`` (with ``num_stages``, the
    decode heads form a cascade, e.g. OCRNet, PointRend, which
    :class:`~.cascade.CascadeHeads` runs). A stage's losses
    are arguments, placed in the network's own heads (see
    :mod:`.head_losses`), so a stage config works for any network; the value
    head, the pseudo-labels and the estimates read the *final* semantic
    logits (:meth:`decode_logits`).

    Args:
        value_head (dict, optional): Config of the value head, e.g.
            ``dict(type='ECEValueNetHead')``.
        stage (str): ``'source'``, ``'value'`` or ``'target'``.
        freeze_segmentor (bool): In the value stage, train only the value
            head. Defaults to True.
        ece_n_bins (int): Bins of the value head's target ECE. Defaults to 10.
        ece_temperature (float, optional): LogSumExp temperature of the
            target's confidence (None: max probability). Defaults to 1e-5.
        ece_class_average (str): ``'all'`` or ``'present'``.
        value_input (str): ``'probs'`` or ``'backbone'`` (see above).
            Defaults to ``'probs'``.
        num_stages (int, optional): Number of cascaded decode heads
            (``decode_head`` is then a list), as in
            ``CascadeEncoderDecoder``. Defaults to None (one head).
        calibration_loss (dict, optional): A loss on the final semantic
            logits, e.g. ``dict(type='DiffECELoss')`` (stage 1), appended to
            the final head's ``loss_decode``. Defaults to None.
        calibrate_auxiliary (bool): Append ``calibration_loss`` to the
            auxiliary heads' (and a cascade's earlier stages') losses too.
            Defaults to False.
        decode_losses (list[dict], optional): Replace the final head's
            ``loss_decode`` (stage 3: the pseudo-label losses). Defaults to
            None (the network's own).
        auxiliary_losses (str | list[dict]): ``'keep'`` the auxiliary heads'
            (and earlier cascade stages') own losses; ``'off'``: build no
            auxiliary head, earlier cascade stages run without a loss; or a
            list that replaces their ``loss_decode``. Defaults to ``'keep'``.
        **kwargs: Arguments of :class:`EncoderDecoder`.
    """

    def __init__(self,
                 value_head: Optional[dict] = None,
                 stage: str = 'source',
                 freeze_segmentor: bool = True,
                 ece_n_bins: int = 10,
                 ece_temperature: Optional[float] = 1e-5,
                 ece_class_average: str = 'all',
                 value_input: str = 'probs',
                 num_stages: Optional[int] = None,
                 calibration_loss: Optional[dict] = None,
                 calibrate_auxiliary: bool = False,
                 decode_losses: Optional[List[dict]] = None,
                 auxiliary_losses: Union[str, List[dict]] = 'keep',
                 **kwargs) -> None:
        self.num_stages = check_num_stages(num_stages,
                                           kwargs.get('decode_head'))
        kwargs['decode_head'], kwargs['auxiliary_head'] = with_head_losses(
            kwargs.get('decode_head'), kwargs.get('auxiliary_head'),
            calibration_loss, calibrate_auxiliary, decode_losses,
            auxiliary_losses)
        super().__init__(**kwargs)
        check_choice('stage', stage, STAGES)
        check_choice('value_input', value_input, VALUE_INPUTS)
        check_choice('ece_class_average', ece_class_average, CLASS_AVERAGES)
        if stage == 'value' and value_head is None:
            raise ValueError("stage='value' needs a value_head, e.g. "
                             "dict(type='ECEValueNetHead')")
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

    def _init_decode_head(self, decode_head) -> None:
        """One head, or a cascade of ``num_stages`` heads."""
        if self.num_stages is None:
            super()._init_decode_head(decode_head)
            return
        self.decode_head = CascadeHeads.build(decode_head)
        last = self.decode_head.final
        self.align_corners = last.align_corners
        self.num_classes = last.num_classes
        self.out_channels = last.out_channels

    @property
    def final_head(self) -> nn.Module:
        """The decode head that makes the final semantic logits."""
        if self.num_stages is None:
            return self.decode_head
        return self.decode_head.final

    def decode_logits(self,
                      feats: Sequence[Tensor],
                      batch_img_metas: Optional[List[dict]] = None) -> Tensor:
        """The final semantic logits of the decode head(s), ``N x C x h x
        w`` at the final head's resolution.

        A cascade runs its stages in turn; PointRend's point head refines
        its input by subdivision (at the input size, which then comes from
        ``batch_img_metas``). Of K-Net's stages, the last.

        Args:
            feats (Sequence[Tensor]): Backbone (and neck) outputs.
            batch_img_metas (list[dict], optional): Image metas; needed by
                PointRend only.

        Returns:
            Tensor: The logits.
        """
        if self.num_stages is None:
            out = self.decode_head.forward(feats)
            return out[-1] if isinstance(out, (list, tuple)) else out
        return self.decode_head.logits(feats, batch_img_metas, self.test_cfg)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Final semantic logits at the input size (MMSeg's inference)."""
        logits = self.decode_logits(self.extract_feat(inputs),
                                    batch_img_metas)
        return self.final_head.predict_by_feat(logits, batch_img_metas)

    def _decode_head_forward_train(self, inputs: List[Tensor],
                                   data_samples: SampleList) -> dict:
        """The decode heads' losses; a cascade's as in
        ``CascadeEncoderDecoder`` (:meth:`CascadeHeads.loss`)."""
        if self.num_stages is None:
            return super()._decode_head_forward_train(inputs, data_samples)
        return self.decode_head.loss(inputs, data_samples, self.train_cfg)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """The final semantic logits, without post-processing."""
        metas = [s.metainfo for s in data_samples] if data_samples else \
            self._image_metas(inputs)
        return self.decode_logits(self.extract_feat(inputs), metas)

    @staticmethod
    def _image_metas(inputs: Tensor) -> List[dict]:
        """Metas of unpadded, unresized inputs."""
        shape = tuple(inputs.shape[2:])
        return [
            dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                 padding_size=[0, 0, 0, 0]) for _ in range(inputs.shape[0])
        ]

    def _value_head_cfg(self, cfg: dict) -> dict:
        """With ``value_input='probs'`` the head reads one map of
        ``num_classes`` channels."""
        if self.value_input == 'backbone':
            return cfg
        classes = self.num_classes
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

    def value_inputs(
            self,
            feats: Sequence[Tensor],
            seg_logits: Optional[Tensor] = None,
            batch_img_metas: Optional[List[dict]] = None) -> Tuple[Tensor]:
        """What the value head reads (see ``value_input``).

        Args:
            feats (tuple[Tensor]): Backbone (and neck) outputs.
            seg_logits (Tensor, optional): :meth:`decode_logits` of
                ``feats``, if already computed.
            batch_img_metas (list[dict], optional): For
                :meth:`decode_logits`.

        Returns:
            tuple[Tensor]: ``feats``, or ``(softmax(seg_logits), )``.
        """
        if self.value_input == 'backbone':
            return feats
        if seg_logits is None:
            seg_logits = self.decode_logits(feats, batch_img_metas)
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
            seg_logits = self.decode_logits(
                feats, [sample.metainfo for sample in data_samples])
        target = self.true_ece(seg_logits, data_samples)
        losses = self.value_head.loss(
            self.value_inputs(feats, seg_logits), target)
        return add_prefix(losses, 'value')

    def true_ece(self, seg_logits: Tensor,
                 data_samples: SampleList) -> Tensor:
        """Detached per-image class-level ECE of ``seg_logits`` against the
        ground truth (the value head's regression target; an extension
        point: a subclass may regress another per-image error).

        Args:
            seg_logits (Tensor): ``N x C x h x w`` logits of the final head.
            data_samples (list[SegDataSample]): The batch's ground truth.

        Returns:
            Tensor: ``(N,)`` float32 targets.
        """
        logits, label = self.logits_at_labels(seg_logits, data_samples)
        return classwise_ece(
            logits,
            label,
            n_bins=self.ece_n_bins,
            temperature=self.ece_temperature,
            ignore_index=self.final_head.ignore_index,
            class_average=self.ece_class_average).detach()

    def logits_at_labels(self, seg_logits: Tensor,
                         data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """Detached logits resized to the ground truth, and the ``N x H x W``
        ground truth (for :meth:`true_ece`)."""
        head = self.final_head
        label = head._stack_batch_gt(data_samples)
        seg_logits = resize(
            seg_logits.detach(), size=label.shape[2:], mode='bilinear',
            align_corners=head.align_corners)
        return seg_logits, label.squeeze(1)

    def estimate_ece(self, inputs: Tensor) -> Tensor:
        """Label-free per-image ECE estimates (``N``) of normalised inputs."""
        if not self.with_value_head:
            raise RuntimeError(
                'estimate_ece needs a value head: train one with a stage-2 '
                "config (model.stage='value', e.g. "
                'configs/calsfda/deeplabv2_r101_gta5_value.py)')
        feats = self.extract_feat(inputs)
        return self.value_head(
            self.value_inputs(feats, None,
                              self._image_metas(inputs))).squeeze(1)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """MMSeg's prediction, plus ``est_ece`` (a 0-dim float32 tensor
        on the model's device; a fraction in [0, 1], as the value head
        outputs it -- the tools and metrics show it in percent) in each
        sample's metainfo when the model has a value head. In ``'whole'``
        test mode the backbone runs once for both."""
        if not self.with_value_head:
            return super().predict(inputs, data_samples)
        if data_samples is None:
            data_samples = [
                SegDataSample(metainfo=meta)
                for meta in self._image_metas(inputs)
            ]
        batch_img_metas = [sample.metainfo for sample in data_samples]
        feats = self.extract_feat(inputs)
        logits = None
        if self.test_cfg.get('mode', 'whole') == 'whole':
            logits = self.decode_logits(feats, batch_img_metas)
            seg_logits = self.final_head.predict_by_feat(
                logits, batch_img_metas)
        else:
            seg_logits = self.inference(inputs, batch_img_metas)
        # kept on the device, as seg_logits are: reading them back here
        # would make the host wait for the network on every batch
        estimates = self.value_head(
            self.value_inputs(feats, logits, batch_img_metas))
        estimates = estimates.squeeze(1).float()
        results = self.postprocess_result(seg_logits, data_samples)
        for sample, estimate in zip(results, estimates):
            sample.set_metainfo(dict(est_ece=estimate))
        return results
