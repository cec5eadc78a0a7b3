"""tools/estimate_ece.py: label-free ECE of a model on an image folder."""
import csv
import json
import os
import os.path as osp
import shutil
import sys
import types

import pytest

from tests.utils import load_tool, run_cli


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
    # percent, as on the console
    assert all(0 < float(r['est_ece_percent']) < 100 for r in rows)
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
    out = tmp_path / 'est.json'
    res = run(config, ckpt, str(tmp_path / 'imgs'), '--warmup-iters', '0',
              '--skip-bad', '--out', str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'skipped 1 unreadable file(s)' in res.stdout
    assert 'broken.png' in res.stdout
    rows = json.loads(out.read_text())
    assert len(rows) == 7
    assert [r for r in rows if r['status'] != 'ok'] == [dict(
        image='broken.png', est_ece_percent=None, status='unreadable')]


def test_skip_bad_reports_what_was_done(stage2, synthetic_root, tmp_path):
    """A truncated PNG among 6 good ones: the warm-up, the progress bar,
    the mean and the CSV say what happened, in one unit (percent)."""
    config, ckpt, _ = stage2
    imgs = tmp_path / 'imgs'
    shutil.copytree(target_images(synthetic_root), imgs)
    good = sorted(imgs.rglob('*.png'))
    assert len(good) == 6
    data = good[0].read_bytes()
    (imgs / 'aaa_truncated.png').write_bytes(data[:len(data) // 2])
    out = tmp_path / 'est.csv'
    res = run(config, ckpt, str(imgs), '--warmup-iters', '50',
              '--batch-size', '4', '--skip-bad', '--out', str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'skipped 1 unreadable file(s)' in res.stdout
    assert 'aaa_truncated.png' in res.stdout
    # 6 readable images in batches of 4: 2 batches, not the 50 asked for
    assert 'BN warm-up: 2 batch(es), 6 image(s) (--warmup-iters 50: the ' \
        'folder has no more)' in res.stdout
    assert '7/7' in res.stdout and '6/7' not in res.stdout.split('7/7')[-1]
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ['image', 'est_ece_percent', 'status']
    # the skipped file is in the output too, without an estimate
    assert len(rows) == 7
    assert rows[0] == dict(image='aaa_truncated.png', est_ece_percent='',
                           status='unreadable')
    rows = rows[1:]
    assert all(r['status'] == 'ok' for r in rows)
    mean = sum(float(r['est_ece_percent']) for r in rows) / len(rows)
    assert f'estimated ECE over 6 images: mean {mean:.2f} % (1 unreadable ' \
        'file(s) skipped)' in res.stdout
    assert mean > 1  # percent, not a fraction


def test_no_warmup_says_so(stage2, synthetic_root, tmp_path):
    config, ckpt, _ = stage2
    res = run(config, ckpt, target_images(synthetic_root), '--warmup-iters',
              '0')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'BN warm-up: none (--warmup-iters 0)' in res.stdout


def test_config_mistake_is_one_line(stage2, synthetic_root, tmp_path):
    config, ckpt, _ = stage2
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = {config!r}\n"
                   "model = dict(value_head=dict(type='NoSuchHead'))\n")
    res = run(str(bad), ckpt, target_images(synthetic_root))
    assert res.returncode == 2
    assert res.stderr.startswith(f'error: {bad}: ')
    assert 'NoSuchHead' in res.stderr
    assert 'Traceback' not in res.stderr


def test_checkpoint_without_value_head(stage2, synthetic_root):
    config, _, stage1 = stage2
    res = run(config, stage1, target_images(synthetic_root))
    assert res.returncode != 0
    assert 'no value head' in res.stderr and 'value.py' in res.stderr


def test_opencv_without_setloglevel(monkeypatch, tmp_path):
    """OpenCV 5 has no cv2.setLogLevel (it moved to
    cv2.utils.logging.setLogLevel): reading images still works, and the
    log level goes where this OpenCV has it."""
    import cv2
    import numpy as np
    tool = load_tool('estimate_ece')
    img = tmp_path / 'a.png'
    cv2.imwrite(str(img), np.zeros((4, 4, 3), np.uint8))
    monkeypatch.delattr(cv2, 'setLogLevel', raising=False)
    monkeypatch.delattr(cv2.utils, 'logging', raising=False)
    assert [p for p, _ in tool.load_images([str(img)], False, [])] == [
        str(img)]
    levels = []
    logging = types.SimpleNamespace(setLogLevel=levels.append)
    monkeypatch.setattr(cv2.utils, 'logging', logging, raising=False)
    assert len(list(tool.load_images([str(img)], False, []))) == 1
    assert levels == [tool.OPENCV_LOG_ERROR]


def test_mixed_sizes_with_the_default_batch_size(stage2, synthetic_root,
                                                 tmp_path):
    """A folder of images of three sizes (after the keep-ratio resize too),
    interleaved: the default --batch-size 4 runs and gives every image the
    estimate of --batch-size 1, in the folder's order."""
    import cv2
    config, ckpt, _ = stage2
    sizes = [None, (96, 64), (128, 96)]  # (width, height); None: 128 x 64
    files = sorted(osp.join(root, name) for root, _, names in os.walk(
        target_images(synthetic_root)) for name in names)
    imgs = tmp_path / 'mixed'
    imgs.mkdir()
    for i in range(10):
        img = cv2.imread(files[i % len(files)])
        if sizes[i % 3]:
            img = cv2.resize(img, sizes[i % 3])
        cv2.imwrite(str(imgs / f'img{i:02d}.png'), img)
    results = []
    for batch_size in ([], ['--batch-size', '1']):
        out = tmp_path / f'est{len(batch_size)}.csv'
        res = run(config, ckpt, str(imgs), '--out', str(out), *batch_size)
        assert res.returncode == 0, res.stderr[-3000:]
        with open(out) as f:
            results.append(list(csv.DictReader(f)))
    default, single = results
    assert [r['image'] for r in default] == [f'img{i:02d}.png'
                                             for i in range(10)]
    assert [r['image'] for r in single] == [r['image'] for r in default]
    assert [float(r['est_ece_percent']) for r in default] == pytest.approx(
        [float(r['est_ece_percent']) for r in single], abs=1e-3)
