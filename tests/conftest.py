import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmseg.utils import register_all_modules  # noqa: E402

import mmseg_calsfda  # noqa: E402,F401  registers everything

register_all_modules(init_default_scope=True)


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A tiny generated benchmark: GTA5-style source, Cityscapes-style
    target, 64x128 images."""
    from mmseg_calsfda.datasets.synthetic import write_benchmark
    root = str(tmp_path_factory.mktemp('synthetic'))
    write_benchmark(root, seed=0, height=64, width=128, source_train=8,
                    source_val=4, target_train=6, target_val=4)
    return root


@pytest.fixture(scope='session')
def adverse_root(tmp_path_factory):
    """ACDC, Dark Zurich, Nighttime Driving and BDD100K in their own
    layouts, four 64x128 images per folder (tests/adverse_layouts.py)."""
    from tests.adverse_layouts import write_adverse_targets
    return write_adverse_targets(str(tmp_path_factory.mktemp('adverse')))


@pytest.fixture
def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def stage2(synthetic_root, tmp_path_factory):
    """Tiny stage-1 and stage-2 runs: (stage-2 config file, stage-2
    checkpoint, stage-1 checkpoint)."""
    from mmseg.registry import RUNNERS

    from tests.utils import tiny_cfg, tiny_source_cfg
    tmp = tmp_path_factory.mktemp('stage2')
    RUNNERS.build(tiny_source_cfg(synthetic_root, tmp / 'src', 2)).train()
    cfg = tiny_cfg('deeplabv2_r101_gta5_value.py', synthetic_root,
                   tmp / 'value', max_iters=2, interval=2, lr=1e-3)
    cfg.load_from = str(tmp / 'src' / 'best_cECE.pth')
    RUNNERS.build(cfg).train()
    config = str(tmp / 'value.py')
    cfg.dump(config)
    return config, str(tmp / 'value' / 'iter_2.pth'), cfg.load_from
