"""Packaging: ``pip install .`` (a wheel built from the checkout) installs
``mmseg_calsfda`` and nothing else, with the shipped configs inside it,
and what it installs works outside a checkout; an sdist holds what
building that wheel needs."""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

from mmseg_calsfda import utils
from mmseg_calsfda.testing import shrink
from tests.utils import ROOT

# what .gitignore leaves out, and a build's own leftovers
IGNORE = shutil.ignore_patterns('.git', '.venv', 'work_dirs', 'data',
                                'build', 'dist', '.devwheels', '*.egg-info',
                                '__pycache__', '*.pyc', '.pytest_cache',
                                '.hypothesis')

# run outside any checkout with only the installed copy and the venv's
# packages importable: what the package finds and loads from its configs
OUTSIDE_CHECKOUT = '''
import json, sys
import mmseg_calsfda
from mmseg_calsfda.cli import shipped_configs_dir
from mmseg_calsfda.testing import tiny_config
cfg = tiny_config('deeplabv2_r101_gta5_source.py', 'data', sys.argv[1])
print(json.dumps(dict(package=mmseg_calsfda.__file__,
                      configs=shipped_configs_dir(), config=cfg.filename,
                      stage=cfg.model.stage, depth=cfg.model.backbone.depth)))
'''


def run(args, cwd, **kwargs):
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                         timeout=120, **kwargs)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res


@pytest.fixture
def source(tmp_path):
    """A copy of the checkout to build from (a build writes ``build/`` and
    ``*.egg-info`` into the folder it builds)."""
    path = tmp_path / 'checkout'
    shutil.copytree(ROOT, path, ignore=IGNORE)
    return path


@pytest.mark.slow
def test_wheel_installs_only_the_package_and_works_outside_a_checkout(
        source, tmp_path):
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
         '--no-build-isolation', '--no-index', '-w', 'wheels', str(source)],
        cwd=tmp_path)
    wheel, = (tmp_path / 'wheels').glob('*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split('/')[0] for name in names}
    assert {t for t in top if not t.endswith('.dist-info')} == {
        'mmseg_calsfda'}, sorted(top)
    assert 'mmseg_calsfda/.mim/configs/calsfda/deeplabv2_gta2cs.py' in names
    assert ('mmseg_calsfda/.mim/configs/_base_/calsfda/target_gta2cs.py'
            in names)

    site = tmp_path / 'site'
    run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
         '--no-index', '--target', str(site), str(wheel)], cwd=tmp_path)
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PYTHONPATH'] = os.pathsep.join(
        [str(site), sysconfig.get_paths()['purelib']])
    res = run([sys.executable, '-c', OUTSIDE_CHECKOUT, str(outside / 'w')],
              cwd=outside, env=env)
    found = json.loads(res.stdout.strip().splitlines()[-1])
    package = osp.join(str(site), 'mmseg_calsfda')
    assert found['package'] == osp.join(package, '__init__.py')
    assert found['configs'] == osp.join(package, '.mim', 'configs')
    assert found['config'] == osp.join(package, '.mim', 'configs', 'calsfda',
                                       'deeplabv2_r101_gta5_source.py')
    assert (found['stage'], found['depth']) == ('source', 18)


def test_sdist_holds_what_the_wheel_build_reads(source, tmp_path):
    run([sys.executable, 'setup.py', '-q', 'sdist', '-d', str(tmp_path)],
        cwd=source)
    sdist, = tmp_path.glob('*.tar.gz')
    with tarfile.open(sdist) as tar:
        names = {re.sub(r'^[^/]+/', '', n) for n in tar.getnames()}
    assert {'setup.py', 'README.md', 'requirements/runtime.txt',
            'requirements/mminstall.txt', 'requirements/tests.txt',
            'configs/calsfda/deeplabv2_gta2cs.py',
            'configs/_base_/calsfda_runtime.py'} <= names


def test_configs_dir_is_the_checkouts_then_the_installed_copy(
        tmp_path, monkeypatch):
    checkout, installed = tmp_path / 'configs', tmp_path / '.mim' / 'configs'
    monkeypatch.setattr(utils, 'CONFIGS_DIRS',
                        (str(checkout), str(installed)))
    assert utils.shipped_configs_dir() is None
    (installed / 'calsfda').mkdir(parents=True)
    assert utils.shipped_configs_dir() == str(installed)
    (checkout / 'calsfda').mkdir(parents=True)
    assert utils.shipped_configs_dir() == str(checkout)


def test_no_shipped_configs_names_where_it_looked(monkeypatch):
    monkeypatch.setattr(shrink, 'CONFIGS', None)
    with pytest.raises(FileNotFoundError) as error:
        shrink.load_stage_config('deeplabv2_gta2cs.py')
    for path in utils.CONFIGS_DIRS:
        assert f'{path}/calsfda' in str(error.value)
