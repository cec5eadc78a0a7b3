"""Stage 3 killed with SIGKILL -- during a pseudo-label pass, and in the
middle of a training epoch -- and resumed with ``tools/train.py --resume``
ends with the weights, labels and selection of an uninterrupted run."""
import json
import os.path as osp
import signal
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.engine.test_target_stage import target_cfg
from tests.utils import ROOT, run_cli

# long end-to-end CLI runs: skip locally with -m 'not slow'
pytestmark = pytest.mark.slow

ROUNDS, EPOCHS_PER_ROUND, ITERS_PER_EPOCH = 2, 2, 3  # 6 images, batch 2


def train(config, *extra, **env):
    """tools/train.py as a user runs it (PYTHONPATH: the kill switch is a
    test module)."""
    return run_cli([sys.executable, 'tools/train.py', config, *extra],
                   timeout=600, PYTHONWARNINGS='ignore', PYTHONPATH=ROOT,
                   **env)


@pytest.fixture(scope='module')
def config_factory(synthetic_root, stage2, tmp_path_factory):
    """Writes a tiny two-round stage-3 config for a work dir, with worker
    processes for the augmentation (reseeded every epoch: resumable) and
    the kill switch installed (inactive unless KILL_AT is set)."""

    def make(name):
        work_dir = tmp_path_factory.mktemp(name)
        cfg = target_cfg(synthetic_root, work_dir, stage2[1], rounds=ROUNDS,
                         epochs_per_round=EPOCHS_PER_ROUND)
        cfg.train_dataloader.update(num_workers=1, persistent_workers=False)
        cfg.custom_imports = dict(imports=['tests.kill_switch'],
                                  allow_failed_imports=False)
        cfg.custom_hooks.append(dict(type='KillSwitchHook'))
        path = str(work_dir / 'target.py')
        cfg.dump(path)
        return path, work_dir

    return make


@pytest.fixture(scope='module')
def uninterrupted(config_factory):
    config, work_dir = config_factory('uninterrupted')
    result = train(config)
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


def checkpoint(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    return ckpt['state_dict'], ckpt['meta']['epoch']


def assert_same_state(state, expected, skip=()):
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        if key.startswith(skip):
            continue
        assert torch.equal(state[key], value), key


def labels(work_dir, round_idx):
    folder = osp.join(work_dir, 'pseudo_labels', f'round_{round_idx}')
    names = sorted(p for p in __import__('glob').glob(
        osp.join(folder, '**', '*.png'), recursive=True))
    return {osp.relpath(p, folder): np.array(Image.open(p)) for p in names}


def selection(work_dir):
    with open(osp.join(work_dir, 'selection.json')) as f:
        history = json.load(f)['history']
    return [{k: v for k, v in row.items() if k != 'time'} for row in history]


@pytest.mark.parametrize('kill_at', [
    'pass:1',  # round 1's pseudo-label pass, at its second PNG
    # mid-epoch in round 1's second epoch: the resume starts inside a round
    f'iter:{(EPOCHS_PER_ROUND + 1) * ITERS_PER_EPOCH + 1}',
])
def test_killed_and_resumed_equals_uninterrupted(config_factory,
                                                 uninterrupted, kill_at):
    config, work_dir = config_factory(kill_at.replace(':', '_'))
    killed = train(config, KILL_AT=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not osp.exists(osp.join(work_dir, 'pseudo_labels', 'round_1')) \
        or kill_at.startswith('iter')
    resumed = train(config, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    last = f'epoch_{ROUNDS * EPOCHS_PER_ROUND}.pth'
    state, epoch = checkpoint(osp.join(work_dir, last))
    expected, expected_epoch = checkpoint(osp.join(uninterrupted, last))
    assert epoch == expected_epoch == ROUNDS * EPOCHS_PER_ROUND
    # The value head's BN statistics are re-estimated before every use
    # (each validation, each round's pass) and never trained: a regular
    # checkpoint, written before its epoch's validation, holds whichever
    # warm-up ran last in that process. The best checkpoint is written
    # after its validation's warm-up and must match in full.
    assert_same_state(state, expected, skip=('value_head.bn.running_',
                                             'value_head.bn.num_batches'))
    best = 'best_estECE.pth'
    assert_same_state(*(checkpoint(osp.join(d, best))[0]
                        for d in (work_dir, uninterrupted)))
    for round_idx in range(ROUNDS):
        ours, theirs = labels(work_dir, round_idx), labels(
            uninterrupted, round_idx)
        assert ours.keys() == theirs.keys() and ours
        assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert selection(work_dir) == selection(uninterrupted)
