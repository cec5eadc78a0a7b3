"""Helpers of the lab's tests: run a lab module as a user would."""
import os
import os.path as osp
import subprocess
import sys

LAB = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROOT = osp.dirname(osp.dirname(LAB))


def run_lab(module, *args, timeout=300):
    """``python -m calsfda_lab.<module> ARGS`` from the repository root with
    the lab importable; returns the CompletedProcess."""
    path = os.pathsep.join(
        p for p in (LAB, os.environ.get('PYTHONPATH')) if p)
    return subprocess.run(
        [sys.executable, '-m', f'calsfda_lab.{module}', *map(str, args)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=path),
        capture_output=True, text=True, timeout=timeout)
