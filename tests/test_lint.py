"""The repository passes ``ruff check .`` (settings in ruff.toml); ruff is a
test requirement, so a missing ruff fails here too."""
import subprocess
import sys

from tests.utils import ROOT


def test_ruff_check_passes():
    res = subprocess.run(
        [sys.executable, '-m', 'ruff', 'check', '--no-cache',
         '--output-format', 'concise', '.'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
