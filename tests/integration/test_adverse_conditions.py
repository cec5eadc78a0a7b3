"""The Cityscapes -> adverse-condition configs, run as shipped (network and
data shrunk) on tiny data in each target's own layout: stage 1 and 2 on
Cityscapes, then one stage-3 epoch per target."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import RUNNERS
from PIL import Image

from mmseg_calsfda.datasets import pseudo_label_path
from tests.adverse_layouts import ROOTS
from tests.utils import tiny_cfg

# stage-3 config: (its target's root, the train images it adapts to, the
# labelled images it reports on) -- globs under the root
TARGETS = {
    'deeplabv3plus_r101_cs2acdc.py': (
        ROOTS['acdc'], 'rgb_anon/*/train/*/*_rgb_anon.png',
        'gt/*/val/*/*_gt_labelTrainIds.png'),
    'deeplabv3plus_r101_mmseg-zoo_cs2acdc-fog.py': (
        ROOTS['acdc'], 'rgb_anon/fog/train/*/*_rgb_anon.png',
        'gt/fog/val/*/*_gt_labelTrainIds.png'),
    'deeplabv3plus_r101_cs2darkzurich.py': (
        ROOTS['dark_zurich'], 'rgb_anon/train/night/*/*_rgb_anon.png',
        'gt/val/night/*/*_gt_labelTrainIds.png'),
    'deeplabv3plus_r101_cs2nightdriving.py': (
        ROOTS['night_driving'], 'leftImg8bit/test/night/*_leftImg8bit.png',
        'gtCoarse_daytime_trainvaltest/test/night/*.png'),
    'deeplabv3plus_r101_cs2bdd100k.py': (
        ROOTS['bdd100k'], 'images/10k/train/*.jpg',
        'labels/sem_seg/masks/val/*.png'),
}


def infos(dataset, key='img_path'):
    """``key`` of every sample of a (serialised) dataset, in order."""
    return [dataset.get_data_info(i)[key] for i in range(len(dataset))]


@pytest.fixture(scope='module')
def cityscapes_value(synthetic_root, tmp_path_factory):
    """Stages 1 and 2 on Cityscapes (the generated benchmark's labelled
    Cityscapes-style tree): the stage-2 checkpoint."""
    tmp = tmp_path_factory.mktemp('cityscapes_source')
    cfg = tiny_cfg('deeplabv3plus_r101_cityscapes_source.py', synthetic_root,
                   tmp / 'src', max_iters=2, interval=2)
    RUNNERS.build(cfg).train()
    cfg = tiny_cfg('deeplabv3plus_r101_cityscapes_value.py', synthetic_root,
                   tmp / 'value', max_iters=2, interval=2, lr=1e-3)
    cfg.load_from = str(tmp / 'src' / 'best_cECE.pth')
    RUNNERS.build(cfg).train()
    return str(tmp / 'value' / 'best_ece_mse.pth')


@pytest.mark.parametrize('name', list(TARGETS))
def test_one_epoch_on_the_target(name, adverse_root, cityscapes_value,
                                 tmp_path):
    root, train_glob, report_glob = TARGETS[name]
    root = osp.join(adverse_root, root)
    cfg = tiny_cfg(name, adverse_root, tmp_path, max_epochs=1)
    cfg.load_from = cityscapes_value
    cfg.custom_hooks[0].update(epochs_per_round=1, bn_warmup_batches=2)
    cfg.custom_hooks[1].num_batches = 2
    runner = RUNNERS.build(cfg)
    runner.train()

    # the pass labelled exactly the target's train images, where the
    # training set reads them
    images = sorted(glob.glob(osp.join(root, train_glob)))
    assert images
    hook = runner._hooks[[type(h).__name__ for h in runner._hooks].index(
        'SelfTrainingHook')]
    listed = hook._dataloader.dataset
    assert infos(listed) == images
    round_dir = str(tmp_path / 'pseudo_labels' / 'round_0')
    train = runner.train_dataloader.dataset
    assert infos(train) == images
    labels = [pseudo_label_path(round_dir, img, listed.data_prefix['img_path'],
                                listed.img_suffix) for img in images]
    assert infos(train, 'seg_map_path') == labels
    assert all(np.array(Image.open(label)).shape == (64, 128)
               for label in labels)
    # label-free selection on the train images; the report on the labelled
    # ones
    checkpoint = [h for h in runner._hooks
                  if type(h).__name__ == 'ECECheckpointHook'][0]
    reported = checkpoint._report_loader.dataset
    assert sorted(infos(reported, 'seg_map_path')) == sorted(
        glob.glob(osp.join(root, report_glob)))
    assert infos(runner.val_dataloader.dataset) == images
    selection = json.loads((tmp_path / 'selection.json').read_text())
    assert selection['criterion']['key'] == 'estECE'
    assert {'estECE', 'mIoU', 'cECE'} <= set(selection['selected'])
