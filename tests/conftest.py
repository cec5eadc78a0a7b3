import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mmseg_calsfda  # noqa: E402,F401  registers everything
from mmseg.utils import register_all_modules  # noqa: E402

register_all_modules(init_default_scope=True)


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A tiny generated benchmark: GTA5-style source, Cityscapes-style
    target, 64x128 images."""
    from mmseg_calsfda.datasets.synthetic import (write_cityscapes_split,
                                                  write_gta5_split)
    root = str(tmp_path_factory.mktemp('synthetic'))
    write_gta5_split(osp.join(root, 'gta'), 8, 64, 128, 0, 'train')
    write_gta5_split(osp.join(root, 'gta'), 4, 64, 128, 0, 'val')
    write_cityscapes_split(osp.join(root, 'cityscapes'), 6, 64, 128, 0,
                           'train')
    write_cityscapes_split(osp.join(root, 'cityscapes'), 4, 64, 128, 0, 'val')
    return root


@pytest.fixture
def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
