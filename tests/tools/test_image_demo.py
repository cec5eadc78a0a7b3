"""tools/image_demo.py: overlays and per-image estimated ECE (percent)."""
import csv
import glob
import os.path as osp
import shutil
import sys

import cv2
import pytest
from mmengine.config import Config

from tests.utils import run_cli


def run(tool, *args):
    return run_cli([sys.executable, f'tools/{tool}.py', *args])


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture
def folder(synthetic_root, tmp_path):
    """Target images of two sizes, one in a sub-folder, and a broken
    file."""
    src = sorted(glob.glob(osp.join(synthetic_root, 'cityscapes',
                                    'leftImg8bit', 'train', '*', '*.png')))
    imgs = tmp_path / 'imgs'
    (imgs / 'sub').mkdir(parents=True)
    shutil.copy(src[0], imgs / 'a.png')
    cv2.imwrite(str(imgs / 'b.png'), cv2.resize(cv2.imread(src[1]),
                                                (96, 80)))
    shutil.copy(src[2], imgs / 'sub' / 'c.png')
    (imgs / 'broken.png').write_bytes(b'not a png')
    return imgs


def test_folder(stage2, folder, tmp_path):
    """An overlay per readable image (its size, the estimate written in
    its corner) and a CSV row per file; the estimates are those of
    estimate_ece.py without warm-up, in the same unit (percent)."""
    config, ckpt, _ = stage2
    # as in the shipped configs, the test pipeline is the test loader's
    # (shrink_config resizes the loaders' pipelines only)
    cfg = Config.fromfile(config)
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline
    config = str(tmp_path / 'value.py')
    cfg.dump(config)
    out = tmp_path / 'out'
    res = run('image_demo', config, ckpt, str(folder), '--out-dir',
              str(out))
    assert res.returncode != 0 and 'broken.png' in res.stderr
    assert '--skip-bad' in res.stderr
    res = run('image_demo', config, ckpt, str(folder), '--out-dir',
              str(out), '--skip-bad')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'estimated ECE over 3 image(s)' in res.stdout
    assert 'skipped 1 unreadable file(s)' in res.stdout
    rows = read_csv(out / 'est_ece.csv')
    assert [(r['image'], r['overlay'], r['status']) for r in rows] == [
        ('a.png', 'a.png', 'ok'), ('b.png', 'b.png', 'ok'),
        ('broken.png', '', 'unreadable'), ('sub/c.png', 'sub/c.png', 'ok')]
    for row in rows[:2] + rows[3:]:
        overlay = cv2.imread(str(out / row['overlay']))
        assert overlay.shape == cv2.imread(str(folder / row['image'])).shape
        # the estimate's box: dark, with white text
        assert (overlay[0, 0] == 0).all() and overlay[:12, :60].max() > 200
    res = run('estimate_ece', config, ckpt, str(folder), '--skip-bad',
              '--warmup-iters', '0', '--out', str(tmp_path / 'est.csv'))
    assert res.returncode == 0, res.stderr[-3000:]
    estimated = {r['image']: r['est_ece_percent']
                 for r in read_csv(tmp_path / 'est.csv')}
    for row in rows:
        if row['status'] == 'ok':
            assert float(row['est_ece_percent']) == pytest.approx(
                float(estimated[row['image']]), abs=1e-3)
            assert float(row['est_ece_percent']) > 1  # percent


def test_single_image_and_bad_input(stage2, folder, tmp_path):
    config, ckpt, stage1 = stage2
    out = tmp_path / 'out'
    res = run('image_demo', config, ckpt, str(folder / 'b.png'),
              '--out-dir', str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_csv(out / 'est_ece.csv')
    assert [(r['image'], r['status']) for r in rows] == [('b.png', 'ok')]
    assert cv2.imread(str(out / 'b.png')).shape == (80, 96, 3)
    res = run('image_demo', config, stage1, str(folder / 'b.png'))
    assert res.returncode == 2
    assert res.stderr.count('\n') == 1 and 'no value head' in res.stderr
    res = run('image_demo', config, ckpt, str(tmp_path / 'missing'))
    assert res.returncode == 2 and 'does not exist' in res.stderr
