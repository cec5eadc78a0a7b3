"""Stage 3 on a plain folder of unlabelled JPEGs (arbitrary names, nested
folders, no label anywhere), with MMSeg's real Runner, from a tiny stage-2
checkpoint: configs/calsfda/deeplabv2_gta2folder.py as a user would run it
-- a child config that sets only the folder."""
import csv
import glob
import json
import os.path as osp
import subprocess
import sys
from itertools import islice

import pytest
from mmseg.registry import RUNNERS
from PIL import Image

from mmseg_calsfda.datasets.image_folder import scan_images
from mmseg_calsfda.datasets.label_maps import CITYSCAPES_CLASSES
from mmseg_calsfda.datasets.random_subset import random_subset
from mmseg_calsfda.engine.hooks import BNWarmupHook, SelfTrainingHook
from tests.utils import ROOT, run_cli, tiny_cfg

# the synthetic target images under names a camera or a user would give
NAMES = ('drive 2024-05-01/clip A/frame_0001.jpg',
         'drive 2024-05-01/clip A/frame_0002.jpg',
         'drive 2024-05-02/b/c/IMG_0007.JPG', 'misc/photo (1).jpeg',
         'x.jpg', 'deep/er/still/img.jpg')


@pytest.fixture(scope='module')
def jpeg_folder(synthetic_root, tmp_path_factory):
    sources = sorted(glob.glob(osp.join(
        synthetic_root, 'cityscapes', 'leftImg8bit', 'train', '*', '*.png')))
    assert len(sources) == len(NAMES)
    root = tmp_path_factory.mktemp('dashcam')
    for source, name in zip(sources, NAMES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(source).convert('RGB').save(root / name, format='JPEG')
    (root / 'README.txt').write_text('frames of my drives')
    return str(root)


def child_config(tmp_path, body: str) -> str:
    """A child config of the shipped folder config, as a user writes it."""
    path = tmp_path / 'my_stage3.py'
    path.write_text("_base_ = ['" + osp.join(
        ROOT, 'configs', 'calsfda', 'deeplabv2_gta2folder.py') + "']\n" +
                    body)
    return str(path)


def folder_cfg(config: str, work_dir, stage2_ckpt, epochs=2,
               data_dir='/unused'):
    """The config at test size. tiny_cfg reads configs/calsfda/<name>; an
    absolute path is taken as is. It leaves '${data_root}' references
    alone and moves any other data_root under ``data_dir``."""
    cfg = tiny_cfg(config, data_dir, work_dir, max_epochs=epochs, lr=1e-3)
    cfg.load_from = stage2_ckpt
    cfg.custom_hooks[0].epochs_per_round = epochs
    cfg.custom_hooks[0].bn_warmup_batches = 2
    cfg.custom_hooks[1].num_batches = 2
    cfg.estimation_subset = dict(size=4, seed=0)
    return cfg


def hook(runner, cls):
    return next(h for h in runner.hooks if isinstance(h, cls))


def test_unlabelled_folder_end_to_end(jpeg_folder, stage2, tmp_path,
                                      monkeypatch):
    from mmseg_calsfda.engine.hooks import self_training_hook
    warmed = []
    warmup = self_training_hook.warmup_bn_stats

    def record(model, data, num_batches, modules):
        warmed.extend(batch['data_samples'][0].img_path
                      for batch in islice(data, num_batches))
        return warmup(model, data, num_batches, modules)

    monkeypatch.setattr(self_training_hook, 'warmup_bn_stats', record)
    config = child_config(tmp_path, f'data_root = {jpeg_folder!r}\n')
    cfg = folder_cfg(config, tmp_path / 'work', stage2[1])
    runner = RUNNERS.build(cfg)
    runner.train()

    # every dataloader of the stage read the folder
    images = scan_images(jpeg_folder, ('.jpg', '.jpeg', '.png'))
    assert len(images) == len(NAMES)
    self_training = hook(runner, SelfTrainingHook)
    loaders = [runner.train_dataloader, runner.val_dataloader,
               self_training._dataloader, self_training._bn_warmup_loader,
               hook(runner, BNWarmupHook)._dataloader]
    for loader in loaders:
        assert loader.dataset.data_root == jpeg_folder
    def img_paths(dataset):
        return [dataset.get_data_info(i)['img_path']
                for i in range(len(dataset))]

    assert img_paths(self_training._dataloader.dataset) == images
    # estimation and both warm-ups: a seeded random sample, in drawn order
    subset = [info['img_path'] for info in random_subset(
        [dict(img_path=p) for p in images], 4, 0)]
    assert img_paths(runner.val_dataloader.dataset) == subset
    assert img_paths(self_training._bn_warmup_loader.dataset) == subset
    assert warmed == subset[:2] != images[:2]

    # pseudo-labels mirror the folder, without the images' suffixes
    round_0 = tmp_path / 'work' / 'pseudo_labels' / 'round_0'
    labels = sorted(str(p.relative_to(round_0))
                    for p in round_0.rglob('*.png'))
    assert labels == sorted(osp.splitext(n)[0] + '.png' for n in NAMES)
    label = Image.open(round_0 / 'x.png')
    assert label.size == (128, 64) and label.mode == 'L'

    # selection by the estimated ECE alone; no target mIoU anywhere
    selection = json.loads((tmp_path / 'work' / 'selection.json')
                           .read_text())
    assert selection['criterion'] == dict(key='estECE', rule='less')
    assert len(selection['history']) == 2
    assert all('estECE' in r and 'mIoU' not in r
               for r in selection['history'])
    assert selection['selected'] == min(selection['history'],
                                        key=lambda r: r['estECE'])
    assert selection['oracle'] is None
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert 'no labelled report set' in log
    epoch = selection['selected']['epoch']
    assert selection['checkpoint'] == f'best_estECE_epoch_{epoch}.pth'
    best = tmp_path / 'work' / 'best_estECE.pth'
    assert best.is_symlink() and best.resolve().name == selection[
        'checkpoint']


def test_the_walkthrough_ends_in_pictures_and_a_plain_model(
        jpeg_folder, stage2, tmp_path):
    """docs/your_data.md from end to end, as a user runs it: the folder
    config with one path set, then tools/image_demo.py and the model
    converter on the selected checkpoint; the exported model loads in a
    process that never imports the plugin."""
    config = child_config(tmp_path, f'data_root = {jpeg_folder!r}\n')
    cfg = folder_cfg(config, tmp_path / 'work', stage2[1], epochs=1)
    RUNNERS.build(cfg).train()
    best = str(tmp_path / 'work' / 'best_estECE.pth')
    cfg.dump(str(tmp_path / 'my_dashcam.py'))  # the test-size network
    shrunk = str(tmp_path / 'my_dashcam.py')

    res = run_cli([sys.executable, 'tools/image_demo.py', shrunk, best,
                   jpeg_folder, '--out-dir', str(tmp_path / 'overlays')])
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    with open(tmp_path / 'overlays' / 'est_ece.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(NAMES)
    assert all(0 < float(r['est_ece_percent']) < 100 for r in rows)
    # overlays mirror the folder, relative to --out-dir
    assert sorted(r['overlay'] for r in rows) == sorted(
        osp.splitext(n)[0] + '.png' for n in NAMES)
    assert all((tmp_path / 'overlays' / r['overlay']).is_file()
               for r in rows)

    res = run_cli([sys.executable, 'tools/model_converters/calsfda2mmseg.py',
                   shrunk, best, str(tmp_path / 'exported'), '--name',
                   'dashcam'])
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    exported = tmp_path / 'exported'
    # a fresh process, stock MMSeg (the DeepLabV2 head needs the plugin's
    # module, which the exported config imports itself)
    code = (
        'import sys, torch\n'
        'from mmseg.apis import init_model\n'
        f"sd = torch.load({str(exported / 'dashcam.pth')!r}, "
        'weights_only=True)\n'
        "assert not any(k.startswith('value_head')\n"
        "               for k in sd['state_dict'])\n"
        f"model = init_model({str(exported / 'dashcam.py')!r}, "
        f"{str(exported / 'dashcam.pth')!r}, device='cpu')\n"
        "import numpy as np\n"
        "from mmseg.apis import inference_model\n"
        "img = np.zeros((64, 128, 3), np.uint8)\n"
        "assert inference_model(model, img).pred_sem_seg.shape == (64, 128)\n"
        "print(type(model).__name__)\n")
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('EncoderDecoder')


def test_an_override_of_one_top_level_key_reaches_its_hooks(
        jpeg_folder, stage2, tmp_path):
    """A child config that overrides only pseudo_label_dataloader's folder:
    the pass and its warm-up read it; what reads data_root still reads
    data_root; --cfg-options data_root=... moves every dataloader."""
    elsewhere = str(tmp_path / 'elsewhere')
    config = child_config(
        tmp_path, f'data_root = {jpeg_folder!r}\n'
        f'pseudo_label_dataloader = dict(dataset=dict(data_root='
        f'{elsewhere!r}))\n')
    runner = RUNNERS.build(folder_cfg(config, tmp_path / 'a', stage2[1],
                                      data_dir=str(tmp_path)))
    self_training = hook(runner, SelfTrainingHook)
    assert self_training._dataloader.dataset.data_root == elsewhere
    assert self_training._bn_warmup_loader.dataset.data_root == jpeg_folder
    assert hook(runner, BNWarmupHook)._dataloader.dataset.data_root == \
        jpeg_folder
    assert runner.cfg.val_dataloader.dataset.data_root == jpeg_folder

    cfg = folder_cfg(child_config(tmp_path, ''), tmp_path / 'b', stage2[1])
    cfg.merge_from_dict(dict(data_root=elsewhere, img_suffix='.jpg'))
    runner = RUNNERS.build(cfg)
    self_training = hook(runner, SelfTrainingHook)
    datasets = [runner.cfg.train_dataloader.dataset,
                runner.cfg.val_dataloader.dataset,
                self_training._dataloader.dataset,
                self_training._bn_warmup_loader.dataset,
                hook(runner, BNWarmupHook)._dataloader.dataset]
    assert {(d.data_root, d.img_suffix) for d in datasets} == {(elsewhere,
                                                                '.jpg')}


def write_report(tmp_path, synthetic_root, labels: int) -> str:
    val = osp.join(synthetic_root, 'cityscapes', 'leftImg8bit', 'val',
                   'synthcity')
    gt = osp.join(synthetic_root, 'cityscapes', 'gtFine', 'val',
                  'synthcity')
    report = tmp_path / 'report'
    (report / 'img').mkdir(parents=True, exist_ok=True)
    (report / 'ann').mkdir(exist_ok=True)
    for i, img in enumerate(sorted(glob.glob(osp.join(val, '*.png')))[:2]):
        stem = osp.basename(img)[:-len('_leftImg8bit.png')]
        Image.open(img).save(report / 'img' / f'{i}.png')
        if i < labels:
            Image.open(osp.join(gt, stem + '_gtFine_labelTrainIds.png')).save(
                report / 'ann' / f'{i}.png')
    return str(report)


def with_report(cfg, report: str) -> None:
    """The report set as docs/your_data.md adds one."""
    cfg.report_dataloader = dict(
        batch_size=1, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(
            type='BaseSegDataset', data_root=report,
            data_prefix=dict(img_path='img', seg_map_path='ann'),
            img_suffix='.png', seg_map_suffix='.png',
            metainfo=dict(classes=CITYSCAPES_CLASSES),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='Resize', scale=(128, 64), keep_ratio=True),
                      dict(type='LoadAnnotations'),
                      dict(type='PackSegInputs')]))
    cfg.report_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU'])]


def test_a_report_set_is_checked_before_the_first_pass(
        jpeg_folder, synthetic_root, stage2, tmp_path):
    config = child_config(tmp_path, f'data_root = {jpeg_folder!r}\n')
    cfg = folder_cfg(config, tmp_path / 'work', stage2[1], epochs=1)
    report = write_report(tmp_path, synthetic_root, labels=1)
    with_report(cfg, report)
    with pytest.raises(FileNotFoundError, match=(
            r"ECECheckpointHook\.report_dataloader: the seg_map_path "
            rf"'{report}/ann/1\.png' does not exist")):
        RUNNERS.build(cfg).train()
    assert not (tmp_path / 'work' / 'pseudo_labels').exists()
    # with its labels, the report goes beside the label-free selection
    write_report(tmp_path, synthetic_root, labels=2)
    RUNNERS.build(cfg).train()
    selection = json.loads((tmp_path / 'work' / 'selection.json')
                           .read_text())
    assert 'mIoU' in selection['selected'] and selection['oracle']
