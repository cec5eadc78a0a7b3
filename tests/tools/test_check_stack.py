"""tools/check_stack.py: the plugin and its tools under the other NumPy
major -- NumPy 2 and OpenCV 5 beside the set-up's NumPy 1 and OpenCV 4.11 --
with checkpoints crossing between the two; and the requirements that let a
NumPy 2 environment install the plugin."""
import csv
import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from tests.utils import ROOT, load_tool

TOOL = os.path.join('tools', 'check_stack.py')


def run(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, TOOL, *args], cwd=ROOT,
                          env=env or dict(os.environ), capture_output=True,
                          text=True, timeout=timeout)


def requirements(name):
    """``requirements/<name>``'s requirements by package name."""
    reqs = {}
    with open(os.path.join(ROOT, 'requirements', name)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                req = Requirement(line)
                reqs[req.name] = req
    return reqs


def test_the_package_accepts_numpy2_and_the_setup_keeps_numpy1():
    """``pip install`` of the plugin (install_requires = runtime.txt)
    keeps a NumPy 2 / OpenCV 5 environment's versions; the set-up's
    constraints hold the reference stack."""
    runtime = requirements('runtime.txt')
    assert runtime['numpy'].specifier.contains('2.4.6')
    assert runtime['numpy'].specifier.contains('1.26.4')
    assert not {'opencv-python', 'opencv-python-headless'} & runtime.keys()
    reference = requirements('reference.txt')
    assert reference['numpy'].specifier.contains('1.26.4')
    assert not reference['numpy'].specifier.contains('2.0.0')
    assert reference['opencv-python'].specifier.contains('4.11.0.86')
    with open(os.path.join(ROOT, 'tools', 'setup_env.sh')) as f:
        assert '-c "$REQ/reference.txt"' in f.read()


def offline_env(**extra):
    """The environment of a pip that reads no config file (this machine's
    names local mirrors) and none of the caller's index settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PIP_')}
    env.update(PIP_CONFIG_FILE=os.devnull, **extra)
    return env


def test_unreachable_index_is_exit_3_and_checks_nothing(tmp_path):
    env = offline_env(PIP_INDEX_URL='http://127.0.0.1:9/simple')
    res = run('--work-dir', str(tmp_path / 'work'), '--cache',
              str(tmp_path / 'cache'), env=env, timeout=120)
    assert res.returncode == load_tool('check_stack').EXIT_OFFLINE, \
        res.stdout + res.stderr
    assert 'the package index is unreachable' in res.stderr
    assert 'Connection refused' in res.stderr
    assert 'base:' not in res.stdout


def test_missing_release_is_a_failure_not_a_skip(tmp_path):
    """An index that answers but has no matching release is not offline:
    exit 1, with pip's reason."""
    links = tmp_path / 'links'
    links.mkdir()
    env = offline_env(PIP_NO_INDEX='1', PIP_FIND_LINKS=str(links))
    res = run('--work-dir', str(tmp_path / 'work'), '--cache',
              str(tmp_path / 'cache'), '--packages', 'numpy>=2', env=env,
              timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert '[stack] FAILED: pip could not download numpy>=2' in res.stderr
    assert 'No matching distribution found' in res.stderr


def read_estimates(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_tools_run_under_the_other_numpy_major(tmp_path):
    """Under this environment's NumPy and the other major's (an overlay of
    pip-installed NumPy and OpenCV): train, estimate_ece and resume work,
    each environment reading the other's checkpoints. Skipped only when
    the package index is unreachable (the wheels are cached after the
    first download)."""
    res = run('--work-dir', str(tmp_path))
    if res.returncode == load_tool('check_stack').EXIT_OFFLINE:
        pytest.skip(res.stderr.strip().splitlines()[0])
    assert res.returncode == 0, res.stdout + res.stderr[-5000:]
    stacks = dict(re.findall(
        r'^\[stack\] (base|overlay): NumPy (\d+)\.', res.stdout, re.M))
    assert sorted(stacks.values()) == ['1', '2'], res.stdout
    opencv = dict(re.findall(
        r'^\[stack\] (base|overlay): NumPy .*, OpenCV (\d+)\.', res.stdout,
        re.M))
    numpy2 = [env for env, major in stacks.items() if major == '2'][0]
    assert int(opencv[numpy2]) >= 5, res.stdout
    assert 'pickles numpy under numpy.core.multiarray' in res.stdout
    assert 'pickles numpy under numpy._core.multiarray' in res.stdout
    # what the runs left: each environment estimated both checkpoints on
    # the 4 target images and resumed the other's to iteration 3
    for env, other in (('base', 'overlay'), ('overlay', 'base')):
        for owner in (env, other):
            rows = read_estimates(tmp_path / env / f'est_{owner}.csv')
            assert len(rows) == 4
            assert all(0 < float(r['est_ece_percent']) < 100 for r in rows)
        assert (tmp_path / env / f'resume_{other}' / 'iter_3.pth').is_file()
    assert res.stdout.splitlines()[-1].startswith('[stack] ok')
