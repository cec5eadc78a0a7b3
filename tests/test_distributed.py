"""tools/dist_train.sh: two processes (gloo, CPU) train and validate."""
import os
import os.path as osp
import subprocess
import sys

from tests.utils import ROOT, tiny_source_cfg


def test_dist_train_two_processes(synthetic_root, tmp_path, free_port):
    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'work', max_iters=2)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    # CPU processes (gloo) also on a machine with GPUs
    env = dict(os.environ, PORT=str(free_port), OMP_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='',
               PATH=osp.dirname(sys.executable) + os.pathsep +
               os.environ['PATH'])
    res = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir',
         str(tmp_path / 'work')], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'Distributed training: True' in out
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    assert osp.islink(tmp_path / 'work' / 'best_cECE.pth')
