"""The demo's three stages as functions: ``tools/demo.py`` runs them in
order; the lab's comparison and experiments (``projects/calsfda_lab``) and
the tests reuse them.

Each stage runs a shipped config from ``configs/calsfda/`` at CPU size
(:func:`~mmseg_calsfda.testing.shrink_config`) on the procedural benchmark
(:mod:`mmseg_calsfda.datasets.synthetic`). ``args`` is the demo's
command line: ``work_dir``, ``seed``, ``device`` and ``network``.
"""
import argparse
import json
import os
import os.path as osp
from typing import Callable, Optional

from mmengine.config import Config
from mmseg.registry import RUNNERS

from ..evaluation import scalar_metrics
from .shrink import load_stage_config, set_run_name, shrink_config

# the demo's sizes: 'full' (the README's numbers) and 'tiny' (a pipeline
# check)
SIZES = dict(
    full=dict(height=128, width=256, source_train=200, source_val=50,
              target_train=200, target_val=50, iters=400, value_iters=300,
              crop=128, warmup_batches=25, rounds=3, epochs_per_round=1),
    tiny=dict(height=64, width=128, source_train=8, source_val=4,
              target_train=6, target_val=4, iters=4, value_iters=2, crop=64,
              warmup_batches=2, rounds=1, epochs_per_round=2))

# The network each stage runs: its three shipped stage configs, whether the
# run shrinks it (a small ResNetV1c trained from scratch) or keeps it as
# shipped (ImageNet-pretrained weights from an installed package), and two
# stage-3 settings at the run's scale: the learning rate (the shipped
# GTA5/SYNTHIA -> Cityscapes configs keep the official 5e-5) and the weight
# eta of the entropy term (NormalizedEntropyLoss; 0 leaves it out; the
# shipped recipe's is 1).
NETWORKS = dict(
    resnet18=dict(
        source='deeplabv2_r101_gta5_source.py',
        value='deeplabv2_r101_gta5_value.py',
        target='deeplabv2_gta2cs.py',
        shrink=True,
        target_lr=2.5e-4,
        entropy_weight=1.0),
    efficientnet_lite0=dict(
        source='deeplabv3plus_efficientnet-lite0_gta5_source.py',
        value='deeplabv3plus_efficientnet-lite0_gta5_value.py',
        target='deeplabv3plus_efficientnet-lite0_gta2cs.py',
        shrink=False,
        # stage 3 at 0.003 without the entropy term: a rate that still
        # moves the pretrained network within the run's few epochs (at
        # 2.5e-4 even the target's true labels move it by only 1.4 mIoU),
        # while the lower rate and no entropy minimisation keep its
        # calibration from collapsing (at stage 1's 0.01 with the entropy
        # term the pseudo-labels make it overconfident within an epoch,
        # and the lowest estimated ECE is then the first, least-trained
        # checkpoint); the lab's measurements:
        # projects/calsfda_lab/docs/findings.md
        target_lr=0.003,
        entropy_weight=0.0))


def add_network_argument(parser: argparse.ArgumentParser,
                         default: str = 'resnet18') -> None:
    """``--network``: which shipped network the stages run.

    Args:
        parser (argparse.ArgumentParser): The command line to extend.
        default (str): The network when none is given: ``'resnet18'``
            (the lab's comparison) or ``'efficientnet_lite0'`` (the
            demo). Defaults to ``'resnet18'``.
    """
    parser.add_argument(
        '--network', choices=list(NETWORKS), default=default,
        help='efficientnet_lite0: DeepLabV3+ on EfficientNet-Lite0 with '
        'ImageNet weights, as shipped; resnet18: DeepLabV2 with a small '
        'ResNetV1c-18 trained from scratch (the shipped DeepLabV2 configs, '
        'shrunk) (default: %(default)s)')


def generate_data(data_dir: str, size: dict, seed: int,
                  shift: str = 'default') -> None:
    from ..datasets.synthetic import write_benchmark
    done = osp.join(data_dir, f'.done_seed{seed}_{shift}')
    if osp.exists(done):
        return
    write_benchmark(data_dir, seed, size['height'], size['width'],
                    size['source_train'], size['source_val'],
                    size['target_train'], size['target_val'], shift=shift)
    open(done, 'w').close()


def stage_config(args, size: dict, data_dir: str, stage: str, work_dir: str,
                 iters: int, lr: Optional[float], **kwargs) -> Config:
    """The shipped config of ``stage`` (``'source'``, ``'value'`` or
    ``'target'``) for ``args.network``, shrunk to a CPU-sized run."""
    network = network_settings(args)
    cfg = shrink_config(
        load_stage_config(network[stage]), data_dir,
        osp.join(args.work_dir, work_dir),
        image_size=(size['height'], size['width']), crop=size['crop'],
        max_iters=iters, lr=lr, seed=args.seed, network=network['shrink'],
        **kwargs)
    if args.device == 'cpu':
        cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                        dict(type='ProgressBarHook')]
    return cfg


def target_dataloader(cfg: Config, data_dir: str, split: str) -> dict:
    """Cityscapes-style target images: ``val`` with labels (reporting
    only), ``train`` without."""
    loader = cfg.val_dataloader.copy()
    resize = [p for p in loader.dataset.pipeline if p['type'] == 'Resize']
    labels = [dict(type='LoadAnnotations')] if split == 'val' else []
    prefix = dict(img_path=f'leftImg8bit/{split}')
    if split == 'val':
        prefix['seg_map_path'] = 'gtFine/val'
    loader.dataset = dict(
        type='CheckedCityscapesDataset',
        data_root=osp.join(data_dir, 'cityscapes'),
        data_prefix=prefix,
        pipeline=[dict(type='LoadImageFromFile'), *resize, *labels,
                  dict(type='PackSegInputs')])
    return loader


def evaluate(cfg: Config, checkpoint: str, dataloader: dict, name: str,
             evaluator=None, hooks=()) -> dict:
    """Tests ``checkpoint`` on ``dataloader`` with the stage's config."""
    cfg = cfg.copy()
    cfg.work_dir = osp.join(cfg.work_dir, f'eval_{name}')
    set_run_name(cfg, f'{cfg.experiment_name}_eval_{name}')
    cfg.load_from = checkpoint
    cfg.test_dataloader = dataloader
    cfg.test_evaluator = evaluator or [
        dict(type='IoUMetric', iou_metrics=['mIoU']),
        dict(type='ECEMetric', n_bins=10, output_dir=cfg.work_dir)
    ]
    cfg.custom_hooks = [
        *hooks,
        dict(type='ProgressBarHook', labels=dict(test=f'evaluate {name}'))
    ]
    return scalar_metrics(RUNNERS.build(cfg).test())


def scores(metrics: dict, prefix: str) -> dict:
    """mIoU, ECE and cECE of an evaluation, under ``prefix``."""
    return {prefix + key: metrics[key] for key in ('mIoU', 'ECE', 'cECE')}


def target_bn_warmup(cfg: Config, size: dict, data_dir: str,
                     modules=('value_head', )) -> dict:
    """A hook re-estimating ``modules``' BN statistics on target train
    images before testing."""
    return dict(type='BNWarmupHook', before='test',
                num_batches=size['warmup_batches'], modules=modules,
                dataloader=target_dataloader(cfg, data_dir, 'train'))


def finished(cfg: Config) -> bool:
    """Whether ``cfg.work_dir`` holds a finished training of ``cfg``: the
    checkpoint ``last_checkpoint`` names is the schedule's last one."""
    path = osp.join(cfg.work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return False
    with open(path) as f:
        last = f.read().strip()
    train = cfg.train_cfg
    final = f"iter_{train['max_iters']}.pth" if 'max_iters' in train \
        else f"epoch_{train['max_epochs']}.pth"
    return osp.basename(last) == final and osp.isfile(last)


def train_stage(cfg: Config) -> None:
    """Trains ``cfg``, unless its work dir already holds the finished
    training (:func:`finished`): rerunning the demo or the lab's comparison
    in the same work dir then reuses what finished and trains the rest
    (delete a stage's folder to train it again)."""
    if finished(cfg):
        print(f'reusing the finished training in {cfg.work_dir}',
              flush=True)
        return
    RUNNERS.build(cfg).train()


def best_checkpoint(work_dir: str, key: str = 'cECE') -> str:
    names = [f for f in os.listdir(work_dir) if f.startswith(f'best_{key}_')]
    if len(names) != 1:
        raise RuntimeError(f'expected one best_{key}_*.pth in {work_dir}, '
                           f'found {names}')
    return osp.join(work_dir, names[0])


def run_source_stage(args, size, data_dir, ece_loss: bool = True,
                     name: Optional[str] = None,
                     edit_cfg: Optional[Callable[[Config], None]] = None
                     ) -> dict:
    """Stage 1 (or, without ``ece_loss``, its CE-only twin) in
    ``WORK_DIR/name``; ``edit_cfg`` changes the shrunk stage config in
    place (experiments)."""
    name = name or ('stage1_source' if ece_loss else 'stage1_ce_only')
    cfg = stage_config(args, size, data_dir, 'source',
                       name, size['iters'], lr=0.01)
    if not ece_loss:
        cfg.model.calibration_loss = None
        cfg.custom_hooks = [dict(type='ProgressBarHook')]
    if edit_cfg is not None:
        edit_cfg(cfg)
    train_stage(cfg)
    ckpt = best_checkpoint(cfg.work_dir)
    target = evaluate(cfg, ckpt, target_dataloader(cfg, data_dir, 'val'),
                      'target_val')
    result = dict(checkpoint=osp.relpath(ckpt, args.work_dir))
    if ece_loss:
        source = evaluate(cfg, ckpt, cfg.val_dataloader, 'source_val')
        result.update(scores(source, 'source_val_'))
    return dict(result, **scores(target, 'target_'))


def run_value_stage(args, size, data_dir, stage1: str,
                    name: str = 'stage2_value',
                    edit_cfg: Optional[Callable[[Config], None]] = None
                    ) -> tuple:
    """Stage 2; returns (ECE estimation on target val, the AdaBN-only
    baseline: the stage-2 model with target BN statistics and nothing
    trained -- how much of the adaptation BN re-estimation alone gives).
    ``edit_cfg`` changes the shrunk stage config in place (experiments)."""
    cfg = stage_config(args, size, data_dir, 'value',
                       name, size['value_iters'], lr=None)
    cfg.load_from = osp.join(args.work_dir, stage1)
    if edit_cfg is not None:
        edit_cfg(cfg)
    train_stage(cfg)
    ckpt = osp.join(cfg.work_dir, f'iter_{size["value_iters"]}.pth')
    target_val = target_dataloader(cfg, data_dir, 'val')
    metric = [dict(type='EstimatedECEMetric', with_labels=True)]
    without = evaluate(cfg, ckpt, target_val, 'target_val_no_warmup', metric)
    with_warmup = evaluate(cfg, ckpt, target_val, 'target_val_warmup',
                           metric,
                           hooks=[target_bn_warmup(cfg, size, data_dir)])
    adabn = evaluate(
        cfg, ckpt, target_val, 'target_val_adabn',
        hooks=[target_bn_warmup(cfg, size, data_dir,
                                ('backbone', 'value_head'))])
    estimation = dict(
        checkpoint=osp.relpath(ckpt, args.work_dir),
        spearman=with_warmup['ece_spearman'],
        pearson=with_warmup['ece_pearson'],
        mean_estimated_ECE=with_warmup['estECE'],
        mean_true_ECE=with_warmup['trueECE'],
        spearman_no_warmup=without['ece_spearman'],
        pearson_no_warmup=without['ece_pearson'],
        mean_estimated_ECE_no_warmup=without['estECE'])
    return estimation, scores(adabn, 'target_')


def network_settings(args) -> dict:
    """``args.network``'s :data:`NETWORKS` entry (runs from before
    ``--network``: ``resnet18``)."""
    return NETWORKS[getattr(args, 'network', 'resnet18')]


def target_lr(args) -> float:
    """Stage 3's learning rate: ``args.target_lr`` when set, else the
    network's (:data:`NETWORKS`)."""
    return getattr(args, 'target_lr', None) or network_settings(
        args)['target_lr']


def set_entropy_weight(cfg: Config, weight: float) -> None:
    """Sets the weight eta of a stage-3 config's entropy term
    (``NormalizedEntropyLoss`` among ``model.decode_losses``); 0 leaves the
    term out."""
    losses = cfg.model.decode_losses
    if weight == 0:
        cfg.model.decode_losses = [
            loss for loss in losses if loss['type'] != 'NormalizedEntropyLoss'
        ]
        return
    for loss in losses:
        if loss['type'] == 'NormalizedEntropyLoss':
            loss['loss_weight'] = weight


def target_stage_config(args, size: dict, data_dir: str, stage2: str,
                        name: str, rounds: int, epochs_per_round: int
                        ) -> Config:
    """Stage 3 of ``args.network`` from the ``stage2`` checkpoint, shrunk,
    with ``rounds`` x ``epochs_per_round`` epochs, at ``args.target_lr``
    when set, else the network's :data:`NETWORKS` ``target_lr``, with the
    network's entropy weight."""
    cfg = stage_config(args, size, data_dir, 'target', name, 0,
                       lr=target_lr(args),
                       max_epochs=rounds * epochs_per_round)
    cfg.load_from = osp.join(args.work_dir, stage2)
    set_entropy_weight(cfg, network_settings(args)['entropy_weight'])
    self_training, bn_warmup = cfg.custom_hooks[:2]
    self_training.epochs_per_round = epochs_per_round
    self_training.bn_warmup_batches = size['warmup_batches']
    bn_warmup.num_batches = size['warmup_batches']
    return cfg


def run_target_stage(args, size, data_dir, stage2: str) -> tuple:
    """Stage 3; returns (adapted, selection) from selection.json."""
    cfg = target_stage_config(args, size, data_dir, stage2, 'stage3_target',
                              size['rounds'], size['epochs_per_round'])
    train_stage(cfg)
    with open(osp.join(cfg.work_dir, 'selection.json')) as f:
        selection = json.load(f)
    chosen = selection['selected']
    ckpt = osp.join(cfg.work_dir, selection['checkpoint'])
    # the label-free choice on labelled target val (report + diagram)
    target = evaluate(cfg, ckpt, target_dataloader(cfg, data_dir, 'val'),
                      'target_val')
    adapted = dict(
        checkpoint=osp.relpath(ckpt, args.work_dir), epoch=chosen['epoch'],
        estimated_ECE=chosen['estECE'], **scores(target, 'target_'))
    summary = dict(
        ece_selected_mIoU=chosen['mIoU'],
        oracle_mIoU=selection['oracle']['mIoU'],
        last_mIoU=selection['last']['mIoU'],
        ece_selected_epoch=chosen['epoch'],
        oracle_epoch=selection['oracle']['epoch'],
        epochs=len(selection['history']))
    return adapted, summary
