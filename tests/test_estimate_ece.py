"""tools/estimate_ece.py: label-free ECE of a model on an image folder."""
import csv
import json
import os.path as osp
import shutil
import sys

import pytest

from tests.utils import run_cli


def run(*args):
    return run_cli([sys.executable, 'tools/estimate_ece.py', *args])


def target_images(synthetic_root):
    return osp.join(synthetic_root, 'cityscapes', 'leftImg8bit', 'train')


@pytest.mark.parametrize('ext', ['csv', 'json'])
def test_estimates_every_image(stage2, synthetic_root, tmp_path, ext):
    config, ckpt, _ = stage2
    out = str(tmp_path / f'est.{ext}')
    res = run(config, ckpt, target_images(synthetic_root), '--warmup-iters',
              '2', '--batch-size', '2', '--out', out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'estimated ECE over 6 images' in res.stdout
    if ext == 'csv':
        with open(out) as f:
            rows = list(csv.DictReader(f))
    else:
        with open(out) as f:
            rows = json.load(f)
    assert len(rows) == 6
    assert all(0 < float(r['est_ece']) < 1 for r in rows)
    assert rows[0]['image'].endswith('_leftImg8bit.png')


def test_empty_folder_names_the_path(stage2, tmp_path):
    config, ckpt, _ = stage2
    res = run(config, ckpt, str(tmp_path))
    assert res.returncode != 0
    assert 'no images' in res.stderr and str(tmp_path) in res.stderr
    res = run(config, ckpt, str(tmp_path / 'missing'))
    assert 'does not exist' in res.stderr


def test_unreadable_image_stops_unless_skip_bad(stage2, synthetic_root,
                                                tmp_path):
    config, ckpt, _ = stage2
    shutil.copytree(target_images(synthetic_root), tmp_path / 'imgs')
    bad = tmp_path / 'imgs' / 'broken.png'
    bad.write_bytes(b'not a png')
    res = run(config, ckpt, str(tmp_path / 'imgs'), '--warmup-iters', '0')
    assert res.returncode != 0 and 'broken.png' in res.stderr
    assert '--skip-bad' in res.stderr
    res = run(config, ckpt, str(tmp_path / 'imgs'), '--warmup-iters', '0',
              '--skip-bad')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'skipped 1 unreadable file(s)' in res.stdout
    assert 'broken.png' in res.stdout


def test_checkpoint_without_value_head(stage2, synthetic_root):
    config, _, stage1 = stage2
    res = run(config, stage1, target_images(synthetic_root))
    assert res.returncode != 0
    assert 'no value head' in res.stderr and 'value.py' in res.stderr
