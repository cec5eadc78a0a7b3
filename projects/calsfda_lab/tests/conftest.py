"""The lab's tests build MMSeg components in-process: the plugin's and the
lab's components registered, MMSeg's default scope set. Every test in this
folder carries the ``lab`` marker (pytest.ini): ``-m "not lab"`` leaves the
lab out."""
import os.path as osp

import pytest
from mmseg.utils import register_all_modules

import calsfda_lab  # noqa: F401  registers the plugin's and the lab's

register_all_modules(init_default_scope=True)

HERE = osp.dirname(osp.abspath(__file__))


def pytest_collection_modifyitems(items):
    """Marks the tests under this folder ``lab`` (the hook sees every
    collected test, the library's too)."""
    for item in items:
        if str(item.path).startswith(HERE + osp.sep):
            item.add_marker(pytest.mark.lab)
