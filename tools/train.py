"""Train a segmentor with a Cal-SFDA config (MMSeg's tools/train.py, plus
early checks that name the config key or file at fault)."""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from mmseg_calsfda.cli import (
    BUILD_ERRORS,
    config_errors,
    fail,
    quiet_known_warnings,
)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(args) -> Config:
    """Loads ``args.config`` with ``--cfg-options``, ``--launcher`` and the
    work_dir (CLI > config > ./work_dirs/<config name>); exits with a
    one-line message if the file is missing or wrong
    (:func:`mmseg_calsfda.cli.load_config`) or torchrun started more
    processes than this node has GPUs."""
    from mmseg_calsfda.cli import load_config as load
    from mmseg_calsfda.config_check import check_launcher_devices
    try:
        check_launcher_devices(args.launcher)
    except RuntimeError as e:
        fail(str(e))
    cfg = load(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switches the optimizer wrapper to AMP, or says why it cannot."""
    import torch
    if not torch.cuda.is_available():
        fail('--amp needs a CUDA GPU, and none is available')
    wrapper = cfg.optim_wrapper.type
    if wrapper == 'AmpOptimWrapper':
        print_log(
            'AMP training is already enabled in your config.',
            logger='current',
            level=logging.WARNING)
        return
    if wrapper != 'OptimWrapper':
        fail('--amp works with optim_wrapper.type="OptimWrapper", the '
             f'config has {wrapper!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def init_cpu_distributed(cfg: Config) -> None:
    """Lets torchrun train on CPUs (gloo), e.g. to test multi-process runs.

    mmengine's ``init_dist('pytorch')`` always calls
    ``torch.cuda.set_device`` and its DDP wrapper always passes a GPU
    ``device_ids``. Starting the process group here (the Runner then skips
    its own) and wrapping with ``device_ids=None`` avoids both.
    """
    import torch
    import torch.distributed as dist
    if cfg.launcher != 'pytorch' or torch.cuda.is_available():
        return
    from mmseg_calsfda.config_check import find_sync_bn
    sync_bn = find_sync_bn(cfg.model)
    if sync_bn:
        fail(f'{sync_bn} is SyncBN, which needs CUDA; for CPU processes '
             f'use e.g. --cfg-options {sync_bn}.type=BN')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def main():
    quiet_known_warnings()
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        enable_amp(cfg)
    cfg.resume = args.resume

    from mmseg_calsfda.config_check import check_config
    with config_errors(args.config, BUILD_ERRORS):
        check_config(cfg)
        init_cpu_distributed(cfg)
        if 'runner_type' not in cfg:
            runner = Runner.from_cfg(cfg)
        else:
            runner = RUNNERS.build(cfg)
    runner.train()
    from mmseg_calsfda.engine import close_process_group
    close_process_group()


if __name__ == '__main__':
    main()
