"""What the stage-3 experiments vary, as registered components.

They use the plugin's extension points (documented, overridable methods)
instead of patching it:

* :class:`UniformWeightPseudoLabeler` overrides
  :meth:`CalibratedPseudoLabeler.class_weights` (the ``nocw`` variant);
* :class:`VariantSelfTrainingHook` overrides
  :meth:`SelfTrainingHook.set_trainable` (``fullnet``),
  :meth:`SelfTrainingHook.pseudo_label_outputs` (``trueece``) and
  :meth:`SelfTrainingHook.run_pseudo_label_pass` (the true-label
  diagnostics ``gtmask``, ``gtfull``, ``gtfix50``, ``gtfix75``);
* :class:`ImageECESegmentor` overrides :meth:`CalSFDASegmentor.true_ece`
  (``imgece``: the value head learns each image's plain ECE instead of its
  class-level ECE).

A config selects them by ``type`` (``python -m
calsfda_lab.experiments.stage3_variants`` does).
"""
import glob
import os.path as osp
import zlib
from typing import Optional

import numpy as np
import torch
from mmseg.registry import HOOKS, MODELS, TASK_UTILS
from mmseg.utils import SampleList
from PIL import Image
from torch import Tensor

from mmseg_calsfda.calibration import imagewise_ece
from mmseg_calsfda.engine.hooks import SelfTrainingHook
from mmseg_calsfda.fileio import write_png_atomic
from mmseg_calsfda.models.segmentors import CalSFDASegmentor
from mmseg_calsfda.pseudo_label import CalibratedPseudoLabeler
from mmseg_calsfda.pseudo_label.pseudo_label_pass import round_dir
from mmseg_calsfda.utils import unwrap_model

from .truth import true_class_ece, true_labels


@TASK_UTILS.register_module()
class UniformWeightPseudoLabeler(CalibratedPseudoLabeler):
    """:class:`CalibratedPseudoLabeler` whose SCE class weights are uniform
    (``1 / C``) instead of ``softmax(1 / tau)``."""

    def class_weights(self, thresholds: Tensor) -> Tensor:
        return torch.full_like(thresholds, 1.0 / thresholds.numel())


@MODELS.register_module()
class ImageECESegmentor(CalSFDASegmentor):
    """:class:`CalSFDASegmentor` whose value head regresses each image's
    plain ECE (all labelled pixels binned together,
    :func:`~mmseg_calsfda.calibration.imagewise_ece`) instead of its
    class-level ECE; everything else is the same."""

    def true_ece(self, seg_logits: Tensor,
                 data_samples: SampleList) -> Tensor:
        logits, label = self.logits_at_labels(seg_logits, data_samples)
        return imagewise_ece(logits, label, n_bins=self.ece_n_bins,
                             temperature=self.ece_temperature,
                             ignore_index=self.final_head.ignore_index)


@HOOKS.register_module()
class VariantSelfTrainingHook(SelfTrainingHook):
    """:class:`SelfTrainingHook` with the stage-3 experiments' changes.

    Args:
        train_backbone (bool): Decode-head epochs train the backbone too
            (and keep it in train mode); the reference freezes it.
            Defaults to False.
        true_ece (bool): The per-image ECE that scales the scores is the
            image's *true* class-level ECE (the benchmark's target training
            labels) instead of the value head's estimate. Defaults to False.
        true_labels (dict, optional): After each pass, give kept pixels
            their true class: ``data_dir`` (the benchmark), ``everywhere``
            (bool: label every pixel, kept or not) and ``share`` (float:
            correct this fixed random share of the kept pixels whose label
            is wrong; 1 corrects all). None: the pass's labels as they are.
        **kwargs: :class:`SelfTrainingHook`'s arguments.
    """

    def __init__(self, *args, train_backbone: bool = False,
                 true_ece: bool = False,
                 true_labels: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.train_backbone = train_backbone
        self.true_ece = true_ece
        self.true_labels = dict(true_labels) if true_labels else None

    def set_trainable(self, runner, epoch_in_round: int) -> None:
        super().set_trainable(runner, epoch_in_round)
        model = unwrap_model(runner.model)
        if self.train_backbone and model.extra_frozen:  # decode-head epoch
            model.backbone.requires_grad_(True)
            model.extra_frozen = []

    def pseudo_label_outputs(self, model, dataloader, desc: str):
        outputs = super().pseudo_label_outputs(model, dataloader, desc)
        if not self.true_ece:
            return outputs
        return ((probs, true_class_ece(probs, img_path).to(est), img_path)
                for probs, est, img_path in outputs)

    def run_pseudo_label_pass(self, runner, round_idx: int) -> dict:
        summary = super().run_pseudo_label_pass(runner, round_idx)
        if self.true_labels is not None:
            self._correct_labels(round_dir(self.out_dir, round_idx),
                                 **self.true_labels)
        return summary

    def _correct_labels(self, labels: str, data_dir: str,
                        everywhere: bool = False, share: float = 1.0) -> None:
        for path in sorted(glob.glob(osp.join(labels, '**', '*.png'),
                                     recursive=True)):
            gt = true_labels(data_dir, labels, path)
            if everywhere:
                write_png_atomic(gt, path)
                continue
            label = np.array(Image.open(path))
            coin = np.random.default_rng(zlib.crc32(
                osp.relpath(path, labels).encode())).random(label.shape)
            fixed = (label < self.labeler.num_classes) & (coin < share)
            write_png_atomic(np.where(fixed, gt, label), path)
