"""Test (and evaluate) a segmentor with a Cal-SFDA config (MMSeg's
tools/test.py, plus early checks that name the config key or file)."""
import argparse
import os

from mmengine.config import DictAction
from mmengine.runner import Runner
from mmseg.registry import RUNNERS
from train import load_config  # this script's folder is importable

from mmseg_calsfda.cli import (
    BUILD_ERRORS,
    config_errors,
    fail,
    quiet_known_warnings,
)


def parse_args():
    parser = argparse.ArgumentParser(
        description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped '
        'into the directory as json')
    parser.add_argument(
        '--out',
        type=str,
        help='the directory to save output prediction for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, '
        'it will be automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        fail('--show/--show-dir need default_hooks.visualization '
             "(e.g. dict(type='SegVisualizationHook'))")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def enable_tta(cfg, config: str) -> None:
    """Tests with ``tta_pipeline`` and wraps the model in ``tta_model``
    (the shipped configs: ``CalSFDATTAModel``); a config without them
    exits with one line before anything is built."""
    missing = [key for key in ('tta_model', 'tta_pipeline')
               if not cfg.get(key)]
    if missing:
        fail(f'{config}: --tta needs {" and ".join(missing)} in the config '
             "(as the shipped ones have, e.g. tta_model = "
             "dict(type='CalSFDATTAModel') and the tta_pipeline of "
             'configs/_base_/datasets/gta5.py)')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def main():
    quiet_known_warnings()
    args = parse_args()
    cfg = load_config(args)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        enable_tta(cfg, args.config)
    if args.out is not None:
        evaluators = cfg.test_evaluator
        for evaluator in (evaluators if isinstance(evaluators, list) else
                          [evaluators]):
            if evaluator['type'] == 'IoUMetric':
                evaluator['output_dir'] = args.out
                evaluator['keep_results'] = True

    from mmseg_calsfda.config_check import check_config
    with config_errors(args.config, BUILD_ERRORS):
        check_config(cfg)
        runner = (RUNNERS.build(cfg)
                  if 'runner_type' in cfg else Runner.from_cfg(cfg))
    runner.test()
    from mmseg_calsfda.engine import close_process_group
    close_process_group()


if __name__ == '__main__':
    main()
