import math
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS, TASK_UTILS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from ...models.losses import SymmetricCELoss
from ...models.segmentors import has_value_head
from ...pseudo_label.pseudo_label_pass import (
    model_outputs,
    run_pseudo_label_pass,
)
from ...pseudo_label.top1_cache import PLACES
from ...utils import check_choice, named_dataloader, unwrap_model
from ..bn_warmup import OneValueGuard, warmup_bn_stats

NORM_LAYERS = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)
LABEL_BN_MODES = ('eval', 'train')


@HOOKS.register_module()
class SelfTrainingHook(Hook):
    """Cal-SFDA's self-training rounds on unlabelled target data.

    Training runs ``EpochBasedTrainLoop`` epochs grouped into rounds of
    ``epochs_per_round``. When a round starts it

    1. re-estimates the backbone's and the value head's BatchNorm
       statistics on target images (``bn_warmup_modules``),
    2. estimates every target image's ECE and builds the calibrated,
       class-balanced pseudo-labels of the round
       (:class:`CalibratedPseudoLabeler`, whose ``cb_prop``/``local_prop``
       grow with the round) into ``work_dir/pseudo_labels/round_<r>/``,
    3. points the training dataset (:class:`PseudoLabelDataset`) at them and
       sets the :class:`SymmetricCELoss` class weights to ``softmax(1/tau)``,
    4. sets the learning rate to ``base_lr * lr_decay ** r``.

    Within a round, the first epoch trains only the affine parameters of the
    backbone's normalisation layers (TENT-like: BatchNorm for CNNs, LayerNorm
    /GroupNorm for transformers such as MiT; the decode head is frozen); later
    epochs
    freeze the backbone (BatchNorm in eval mode too) and train the decode
    head. The value head never trains on target data.

    Resumable: a resumed run re-enters the round of its epoch; a finished
    pseudo-label round is reused, an unfinished one is redone; the BN
    warm-up runs at a round's first epoch only (a run resumed later in the
    round has the statistics it trained with in its checkpoint). Killed
    anywhere and resumed, a run ends with the weights and labels of an
    uninterrupted one (tested).

    Args:
        dataloader (dict | DataLoader | str): Target training images with
            the test pipeline and no annotations (the pseudo-labelling
            pass), or the name of the config's top-level dataloader that
            holds them (``'pseudo_label_dataloader'``), read when training
            starts.
        pseudo_labeler (dict): Config of a :class:`CalibratedPseudoLabeler`;
            ``num_classes`` defaults to the decode head's.
        epochs_per_round (int): Epochs per round.
        bn_warmup_batches (int): Batches of the BN warm-up before each
            pass. Defaults to 50.
        bn_warmup_modules (Sequence[str]): Whose BatchNorm statistics the
            warm-up re-estimates on target. Defaults to
            ``('backbone', 'value_head')``: AdaBN, the pseudo-labels come
            from target statistics; ``('value_head',)`` keeps the source
            statistics of the segmentor (docs/method.md).
        lr_decay (float): Learning-rate factor per round. Defaults to
            ``1 / sqrt(2)``.
        tent_first_epoch (bool): Train only the backbone's normalisation
            affine parameters in a round's first epoch. Defaults to True.
        tent_name_filter (str, optional): Only the normalisation layers
            whose module name contains this string, e.g. ``'bn'`` as the
            reference (its ResNet names the block BatchNorms ``bn1``..``bn3``
            and leaves the downsample ones out; in MMSeg's ResNetV1c the stem
            ones are ``stem.1/4/7``). None: every one. Defaults to None.
        out_dir (str, optional): Where rounds are written. Defaults to
            ``work_dir/pseudo_labels``.
        label_bn_mode (str): How BatchNorm layers normalise while the pass
            makes thresholds and labels: ``'eval'`` with their running
            statistics (after the warm-up); ``'train'`` as the reference
            code does, which labels with the model in train mode: each
            layer normalises every target batch with that batch's own
            statistics (and updates its running statistics). Defaults to
            ``'eval'``.
        top1_cache (str): Where a pass keeps each pixel's top-1 output
            between its halves (5 bytes per pixel, ~30 GB for Cityscapes'
            2975 images on one GPU): ``'memory'`` on the GPU, ``'disk'``
            under ``out_dir``, or ``'auto'``: memory when it fits in half
            of what is free there. Defaults to ``'auto'``.
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 dataloader: Union[dict, DataLoader, str],
                 pseudo_labeler: dict,
                 epochs_per_round: int,
                 bn_warmup_batches: int = 50,
                 bn_warmup_modules: Sequence[str] = ('backbone',
                                                     'value_head'),
                 lr_decay: float = 1 / math.sqrt(2),
                 tent_first_epoch: bool = True,
                 tent_name_filter: Optional[str] = None,
                 out_dir: Optional[str] = None,
                 label_bn_mode: str = 'eval',
                 top1_cache: str = 'auto') -> None:
        if epochs_per_round < 1:
            raise ValueError(
                f'epochs_per_round must be >= 1, got {epochs_per_round}')
        # checked before any training, not at the first pass
        check_choice('top1_cache', top1_cache, PLACES, 'SelfTrainingHook')
        check_choice('label_bn_mode', label_bn_mode, LABEL_BN_MODES,
                     'SelfTrainingHook')
        self.label_bn_mode = label_bn_mode
        self._dataloader = dataloader
        self.top1_cache = top1_cache
        self.labeler_cfg = dict(pseudo_labeler)
        self.epochs_per_round = epochs_per_round
        self.bn_warmup_batches = bn_warmup_batches
        self.bn_warmup_modules = tuple(bn_warmup_modules)
        self.lr_decay = lr_decay
        self.tent_first_epoch = tent_first_epoch
        self.tent_name_filter = tent_name_filter
        self.out_dir = out_dir
        self.labeler = None
        self.current_round: Optional[int] = None

    # ------------------------------------------------------------- set-up
    @staticmethod
    def _train_dataset(runner):
        dataset = runner.train_dataloader.dataset
        while not hasattr(dataset, 'pseudo_label_dir') and hasattr(
                dataset, 'dataset'):
            dataset = dataset.dataset  # through dataset wrappers
        if not hasattr(dataset, 'pseudo_label_dir'):
            raise TypeError('SelfTrainingHook trains on a PseudoLabelDataset;'
                            ' train_dataloader.dataset is '
                            f'{type(dataset).__name__}')
        return dataset

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        if getattr(model, 'stage', None) != 'target':
            raise ValueError("SelfTrainingHook needs model.stage='target'")
        if not model.with_value_head:
            raise ValueError(
                'SelfTrainingHook needs a model with a value head; adapt a '
                'stage-2 checkpoint (configs/calsfda/*_value.py)')
        self._check_load_from(runner, model)
        head_classes = model.num_classes
        cfg = dict(self.labeler_cfg)
        cfg.setdefault('num_classes', head_classes)
        self.labeler = TASK_UTILS.build(cfg)
        data_classes = len(self._train_dataset(runner).metainfo['classes'])
        if len({head_classes, self.labeler.num_classes, data_classes}) > 1:
            raise ValueError(
                'num_classes disagree: decode_head.num_classes='
                f'{head_classes}, pseudo_labeler.num_classes='
                f'{self.labeler.num_classes}, train dataset classes='
                f'{data_classes}')
        if isinstance(self._dataloader, str):
            self._dataloader = named_dataloader(
                runner.cfg, self._dataloader, 'SelfTrainingHook: dataloader')
        if isinstance(self._dataloader, dict):
            self._dataloader = runner.build_dataloader(
                self._dataloader, seed=runner.seed)
        if self.out_dir is None:
            self.out_dir = osp.join(runner.work_dir, 'pseudo_labels')
        for group in runner.optim_wrapper.param_groups:
            group.setdefault('round_base_lr', group['lr'])

    @staticmethod
    def _check_load_from(runner, model) -> None:
        """A fresh run must start from a checkpoint whose value head is the
        one ``model.value_head`` / ``model.value_input`` describe."""
        path = runner.cfg.get('load_from')
        if not path or runner.cfg.get('resume') or not osp.isfile(path):
            return
        ckpt = torch.load(path, map_location='cpu', mmap=True)
        if not has_value_head(ckpt):
            raise ValueError(
                f'load_from = {path!r} holds no value head: target '
                'adaptation starts from a stage-2 checkpoint, which a '
                '"value" config writes (e.g. configs/calsfda/'
                'deeplabv2_r101_gta5_value.py, best_ece_mse.pth)')
        state = ckpt.get('state_dict', ckpt)
        for key, param in model.value_head.state_dict(
                prefix='value_head.').items():
            if key in state and state[key].shape != param.shape:
                raise ValueError(
                    f'load_from = {path!r}: {key} has shape '
                    f'{tuple(state[key].shape)}, the model\'s '
                    f'{tuple(param.shape)}; model.value_head and '
                    'model.value_input must be as in the stage-2 config '
                    'that trained it')

    # ------------------------------------------------------------- epochs
    def before_train_epoch(self, runner) -> None:
        round_idx, epoch_in_round = divmod(runner.epoch,
                                           self.epochs_per_round)
        if round_idx != self.current_round:
            self._start_round(runner, round_idx, epoch_in_round)
        self.set_trainable(runner, epoch_in_round)

    def _start_round(self, runner, round_idx: int,
                     epoch_in_round: int = 0) -> None:
        model = unwrap_model(runner.model)
        model.eval()
        if epoch_in_round == 0:
            # a run resumed later in a round skips it: its checkpoint
            # holds the statistics the round has trained with since
            warmup_bn_stats(runner.model, self._dataloader,
                            self.bn_warmup_batches,
                            modules=self.bn_warmup_modules)
        norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        if self.label_bn_mode == 'train':  # the reference labels so
            for module in norms:
                module.train()
        with OneValueGuard(norms):  # pooled features, one image a batch
            summary = self.run_pseudo_label_pass(runner, round_idx)
        self._train_dataset(runner).pseudo_label_dir = osp.join(
            self.out_dir, f'round_{round_idx}')
        for loss in model.modules():
            if isinstance(loss, SymmetricCELoss):
                loss.class_weight = summary['class_weights']
        for group in runner.optim_wrapper.param_groups:
            group['lr'] = group['round_base_lr'] * self.lr_decay**round_idx
        self.current_round = round_idx
        runner.logger.info(
            f'self-training round {round_idx}: lr x'
            f'{self.lr_decay**round_idx:.3f}'
            f', labels in {self._train_dataset(runner).pseudo_label_dir}')

    # ------------------------------------------------- extension points
    def run_pseudo_label_pass(self, runner, round_idx: int) -> dict:
        """Builds (or reuses) round ``round_idx``'s pseudo-labels under
        ``self.out_dir`` and returns the round summary
        (:func:`run_pseudo_label_pass`); the model is in eval mode.

        Override to change the labels a round trains on (e.g. post-process
        the PNGs in :func:`round_dir` before returning).
        """
        dataset = self._dataloader.dataset
        return run_pseudo_label_pass(
            runner.model, self._dataloader, self.labeler, round_idx,
            self.out_dir, dataset.data_prefix['img_path'],
            dataset.img_suffix, self.top1_cache,
            outputs=self.pseudo_label_outputs)

    def pseudo_label_outputs(self, model, dataloader, desc: str):
        """What the pass labels from: yields ``(probs 1 x C x H x W,
        est_ece (1,), img_path)`` per target image (default:
        :func:`model_outputs`, the model's probabilities and the value
        head's estimate). Override to change either, e.g. to replace the
        estimate."""
        return model_outputs(model, dataloader, desc)

    def set_trainable(self, runner, epoch_in_round: int) -> None:
        """Sets what trains in epoch ``epoch_in_round`` of a round:
        only the backbone's norm-affine parameters in the first epoch
        (``tent_first_epoch``), then the decode head (and neck, auxiliary
        head) with the backbone frozen. Sets ``model.extra_frozen`` to the
        modules kept frozen in eval mode (``['backbone']`` in decode-head
        epochs). Override to train another set."""
        model = unwrap_model(runner.model)
        bn_only = self.tent_first_epoch and epoch_in_round == 0
        model.backbone.requires_grad_(False)
        if bn_only:
            for name, module in model.backbone.named_modules():
                if self.tent_name_filter not in (None, '') and (
                        self.tent_name_filter not in name):
                    continue
                if isinstance(module, NORM_LAYERS) and (
                        getattr(module, 'affine', False) or
                        getattr(module, 'elementwise_affine', False)):
                    module.weight.requires_grad_(True)
                    if module.bias is not None:
                        module.bias.requires_grad_(True)
        for name in ('neck', 'decode_head', 'auxiliary_head'):
            module = getattr(model, name, None)
            if module is not None:
                module.requires_grad_(not bn_only)
        model.extra_frozen = [] if bn_only else ['backbone']
