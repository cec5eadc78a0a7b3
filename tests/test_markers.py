"""The test groups docs/get_started.md names: ``slow`` and ``lab`` are
registered, and the lab's conftest marks every test under its folder
``lab`` (and no other), so ``-m "not slow and not lab"`` leaves both out."""
import importlib.util
import os.path as osp
from pathlib import Path
from types import SimpleNamespace

from tests.utils import ROOT

LAB_TESTS = osp.join(ROOT, 'projects', 'calsfda_lab', 'tests')


def lab_conftest():
    spec = importlib.util.spec_from_file_location(
        'lab_conftest', osp.join(LAB_TESTS, 'conftest.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_item(path):
    item = SimpleNamespace(path=Path(path), markers=[])
    item.add_marker = lambda mark: item.markers.append(mark.name)
    return item


def test_markers_are_registered(pytestconfig):
    names = {line.split(':')[0] for line in pytestconfig.getini('markers')}
    assert {'slow', 'lab'} <= names


def test_lab_conftest_marks_the_lab_tests_only():
    lab = [fake_item(osp.join(LAB_TESTS, 'test_presets.py')),
           fake_item(osp.join(LAB_TESTS, 'sub', 'test_x.py'))]
    others = [fake_item(osp.join(ROOT, 'tests', 'test_console.py')),
              fake_item(LAB_TESTS + '_other' + osp.sep + 'test_x.py')]
    lab_conftest().pytest_collection_modifyitems(lab + others)
    assert [item.markers for item in lab] == [['lab'], ['lab']]
    assert [item.markers for item in others] == [[], []]
