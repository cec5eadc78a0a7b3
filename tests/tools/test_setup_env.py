"""tools/setup_env.sh: a clean set-up prints its ``[setup]`` lines and no
pip ERROR or warning a newcomer would read as a failed install."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.utils import ROOT

in_venv = pytest.mark.skipif(sys.prefix == sys.base_prefix,
                             reason='the tests do not run in a venv')

# Words that make a line of set-up output read as a failure
ALARMING = ('ERROR', 'Error', 'WARNING', 'Warning', 'warning:')


def alarming(text: str) -> list:
    return [line for line in text.splitlines()
            if any(word in line for word in ALARMING)]


def test_alarming_catches_the_known_noise():
    pip_conflict = ("ERROR: pip's dependency resolver does not currently "
                    'take into account all the packages that are installed.')
    numpy = ('/venv/lib/python3.11/site-packages/torch/_subclasses/'
             "functional_tensor.py:368: UserWarning: Failed to initialize "
             "NumPy: No module named 'numpy'")
    assert alarming(f'{pip_conflict}\n{numpy}\n[setup] ok\n') == [
        pip_conflict, numpy]


@in_venv
def test_last_install_printed_no_error_or_warning():
    """What the last set-up run that installed something printed on stderr
    (in CI: the fresh clone's whole set-up), kept in ``$VENV/setup.log``.
    """
    log = osp.join(sys.prefix, 'setup.log')
    if not osp.isfile(log):
        pytest.skip(f'{log} missing: this venv predates it')
    with open(log) as f:
        assert alarming(f.read()) == []


@in_venv
def test_rerun_prints_only_setup_lines():
    res = subprocess.run(['bash', 'tools/setup_env.sh'], cwd=ROOT,
                         env=dict(os.environ, VENV=sys.prefix),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = (res.stdout + res.stderr).splitlines()
    assert lines and all(line.startswith('[setup] ') for line in lines), \
        lines
    assert alarming(res.stdout + res.stderr) == []
    assert '[setup] ok: torch' in res.stdout
