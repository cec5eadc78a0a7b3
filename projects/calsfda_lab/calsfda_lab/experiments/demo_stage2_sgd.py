"""The demo's stage 2 with the official optimizer, on a finished demo.

    python -m calsfda_lab.experiments.demo_stage2_sgd WORK_DIR [--seed S]

Re-runs stage 2 of ``tools/demo.py`` (same stage-1 model, data and
iterations) with SGD 5e-5, momentum 0.9, nesterov, weight decay 5e-4 -- the
official value-net optimizer -- instead of the shipped Adam 1e-4, in
``WORK_DIR/sgd``, and prints the ECE-estimation scores on target val as the
demo reports them (docs/differences.md: stage-2 optimizer).
"""
import argparse
import json
import os
import os.path as osp
import shutil

from mmseg_calsfda.testing import demo_stages as demo

OFFICIAL = dict(type='SGD', lr=5e-5, momentum=0.9, nesterov=True,
                weight_decay=5e-4)


def official_optimizer(cfg) -> None:
    """Stage 2's config with the official optimizer (``edit_cfg`` of
    :func:`demo_stages.run_value_stage`)."""
    cfg.optim_wrapper.optimizer = dict(OFFICIAL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='a finished tools/demo.py run')
    parser.add_argument('--seed', type=int, default=0,
                        help='the seed that run used')
    cli = parser.parse_args()
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401
    register_all_modules()
    with open(osp.join(cli.work_dir, 'results.json')) as f:
        stage1 = json.load(f)['source_only']['checkpoint']
    args = argparse.Namespace(work_dir=osp.join(cli.work_dir, 'sgd'),
                              seed=cli.seed, device='cpu', tiny=False)
    os.makedirs(args.work_dir, exist_ok=True)
    shutil.copy(osp.realpath(osp.join(cli.work_dir, stage1)),
                osp.join(args.work_dir, osp.basename(stage1)))
    estimation, _ = demo.run_value_stage(args, demo.SIZES['full'],
                                         osp.join(cli.work_dir, 'data'),
                                         osp.basename(stage1),
                                         edit_cfg=official_optimizer)
    print(json.dumps(estimation, indent=2))


if __name__ == '__main__':
    main()
