"""The fused Triton kernels of the class-level ECE against the PyTorch
ops, on the CPU through Triton's interpreter (on a GPU:
``tests/integration/test_cuda.py``)."""
import os
import sys

import pytest
import torch

from mmseg_calsfda import fused_bin_stats
from tests.fused_cases import CASES

pytest.importorskip('triton')


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    """Both paths of every case, computed in one interpreter process."""
    import subprocess
    out = tmp_path_factory.mktemp('fused') / 'cases.pt'
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONWARNINGS='ignore')
    subprocess.run([sys.executable, 'tests/fused_cases.py', str(out)],
                   check=True, env=env, timeout=600,
                   cwd=os.path.dirname(os.path.dirname(__file__)))
    return torch.load(out)


@pytest.mark.parametrize('name', sorted(CASES))
def test_fused_kernels_match_the_pytorch_ops(results, name):
    (ece, grad), (ref, ref_grad) = results[name]['fused'], results[name][
        'plain']
    dtype = CASES[name][-1]
    assert grad.dtype == dtype
    torch.testing.assert_close(ece, ref, rtol=0, atol=2e-7)
    scale = float(ref_grad.abs().max())
    assert scale > 0
    # float32 rounding; bf16: one rounding of the same float32 gradient
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-4
    torch.testing.assert_close(grad.float(), ref_grad.float(), rtol=tol,
                               atol=tol * scale)


def test_the_cpu_path_is_pytorch_unless_interpreted():
    if os.environ.get('TRITON_INTERPRET') == '1':
        pytest.skip('the interpreter is on in this process')
    assert not fused_bin_stats.available(torch.zeros(1))
