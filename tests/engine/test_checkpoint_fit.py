"""Stage 2 from a checkpoint of a plain MMSeg network (the model zoo's
kind): the value head's keys are named in the log; a checkpoint whose shapes
do not fit is refused before the first iteration."""
import glob
import logging
import os.path as osp
import tempfile

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS, RUNNERS
from torch import nn

from mmseg_calsfda.engine.checkpoint_fit import check_checkpoint_fits
from mmseg_calsfda.testing import resize_resnet
from tests.utils import stage_config, tiny_cfg

ZOO_CONFIG = ('mmseg::deeplabv3plus/'
              'deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py')
ZOO_STAGE2 = 'deeplabv3plus_r101_mmseg-zoo_cityscapes_value.py'


def zoo_network(num_classes: int = 19, small: bool = True) -> nn.Module:
    """MMSeg's Cityscapes DeepLabV3+ (an EncoderDecoder) from its model-zoo
    config, without ImageNet weights; ``small``: on the tests' ResNet
    (ResNetV1c-18, 16 channels), as ``tiny_cfg`` shrinks the stage
    configs."""
    with tempfile.TemporaryDirectory() as tmp:  # mmseg:: only as a base
        path = osp.join(tmp, 'zoo.py')
        with open(path, 'w') as f:
            f.write(f'_base_ = [{ZOO_CONFIG!r}]\n')
        model = Config.fromfile(path).model
    model.pretrained = None
    model.decode_head.num_classes = num_classes
    model.auxiliary_head.num_classes = num_classes
    if small:
        resize_resnet(model, 18, 16)
    return MODELS.build(model)


def save_zoo_checkpoint(path: str, num_classes: int = 19) -> dict:
    """A checkpoint as MMEngine writes one (meta + state_dict) of
    :func:`zoo_network`; returns its state dict."""
    torch.manual_seed(0)
    model = zoo_network(num_classes)
    assert type(model) is EncoderDecoder
    state = model.state_dict()
    save_checkpoint(dict(meta=dict(mmseg_version='1.2.2', iter=80000),
                         state_dict=state), path)
    return state


def stage2_cfg(synthetic_root, work_dir, checkpoint):
    cfg = tiny_cfg(ZOO_STAGE2, synthetic_root, work_dir, max_iters=2,
                   interval=2, lr=1e-3)
    cfg.load_from = checkpoint
    return cfg


def test_stage2_from_a_plain_mmseg_checkpoint(synthetic_root, tmp_path):
    checkpoint = str(tmp_path / 'zoo.pth')
    saved = save_zoo_checkpoint(checkpoint)
    runner = RUNNERS.build(stage2_cfg(synthetic_root, tmp_path / 'value',
                                      checkpoint))
    runner.train()
    assert runner.iter == 2
    log = glob.glob(str(tmp_path / 'value' / '*' / '*.log'))[0]
    log = open(log).read()
    new = [k for k in runner.model.state_dict()
           if k not in saved and not k.endswith('num_batches_tracked')]
    assert new and all(k.startswith('value_head.') for k in new)
    assert (f'load_from = {checkpoint!r}: {len(new)} key(s) of the model '
            'are not in the checkpoint and keep their initialisation: '
            f'{", ".join(new)}') in log
    # the network is the checkpoint's, frozen through stage 2
    state = runner.model.state_dict()
    assert not [k for k, v in saved.items() if not torch.equal(state[k], v)]


def test_a_checkpoint_of_another_class_count_is_refused(synthetic_root,
                                                         tmp_path):
    checkpoint = str(tmp_path / 'ade20k.pth')
    save_zoo_checkpoint(checkpoint, num_classes=150)
    runner = RUNNERS.build(stage2_cfg(synthetic_root, tmp_path / 'value',
                                      checkpoint))
    with pytest.raises(ValueError, match=(
            rf"^load_from = '{checkpoint}': decode_head\.conv_seg\.weight has "
            r"shape \(150, 512, 1, 1\), the model's \(19, 512, 1, 1\) \(and 3 "
            r'more: decode_head\.conv_seg\.bias, auxiliary_head\.conv_seg\.'
            r"weight, auxiliary_head\.conv_seg\.bias\); the checkpoint holds "
            'another network or class count')):
        runner.train()
    assert runner.iter == 0
    assert not glob.glob(str(tmp_path / 'value' / '*.pth'))


def test_the_zoo_stage2_network_is_the_zoo_checkpoints():
    """The shipped model-zoo stage 2 builds MMSeg's model-zoo network,
    tensor for tensor: its checkpoint (load_from, a download) fits, and
    only the value head is new."""
    cfg = stage_config(ZOO_STAGE2)
    assert cfg.load_from.startswith('https://download.openmmlab.com/')
    assert cfg.load_from.endswith('80k_cityscapes_20200606_114143-'
                                  '068fcfe9.pth')
    ours = MODELS.build(cfg.model).state_dict()
    zoo = zoo_network(small=False).state_dict()
    assert {k: v.shape for k, v in ours.items()
            if not k.startswith('value_head.')} == {
                k: v.shape for k, v in zoo.items()}


def test_check_checkpoint_fits_names_missing_and_misfit_keys(caplog):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith('1.')}
    with caplog.at_level(logging.INFO):
        check_checkpoint_fits(model, dict(state_dict=state), 'ckpt',
                              logger=logging.getLogger('fit'))
    assert ('ckpt: 4 key(s) of the model are not in the checkpoint and keep '
            'their initialisation: 1.weight, 1.bias, 1.running_mean, '
            '1.running_var') in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING  # not a value head
    state['module.0.weight'] = torch.zeros(5, 3, 1, 1)  # DDP's prefix
    del state['0.weight']
    with pytest.raises(ValueError, match=r"^ckpt: 0\.weight has shape "
                       r"\(5, 3, 1, 1\), the model's \(4, 3, 1, 1\); "):
        check_checkpoint_fits(model, state, 'ckpt')


def _saved(model_cfg: dict) -> dict:
    """A checkpoint of ``probs_segmentor()``'s weights whose meta holds a
    config with ``model_cfg``, as MMEngine saves it."""
    from tests.utils import probs_segmentor
    return dict(state_dict=probs_segmentor().state_dict(),
                meta=dict(cfg=Config(dict(model=model_cfg)).pretty_text))


@pytest.mark.parametrize('saved_head, stage, refused', [
    # the same settings, written out or left to the defaults
    (dict(type='ECEValueNetHead', channels=16), 'value', None),
    (dict(type='ECEValueNetHead', channels=16, pool='avg', act_cfg=None),
     'target', None),
    # a weightless setting the model does not share
    (dict(type='ECEValueNetHead', channels=16, act_cfg=dict(type='ReLU')),
     'value', "value_head.act_cfg={'type': 'ReLU'}, the model has None"),
    (dict(type='ECEValueNetHead', channels=16, pool='bilinear'), 'target',
     "value_head.pool='bilinear', the model has 'avg'"),
    # a stage-1 checkpoint trained no value head: nothing to compare
    (dict(type='ECEValueNetHead', channels=16, act_cfg=dict(type='ReLU')),
     'source', None),
])
def test_a_value_head_trained_with_other_weightless_settings_is_refused(
        saved_head, stage, refused):
    """pool, act_cfg and align_corners have no weights: a stage-2 head
    trained with a ReLU loads into a head without one with no shape error.
    The checkpoint's saved config tells them apart."""
    from tests.utils import probs_segmentor
    model = probs_segmentor(stage='target')
    checkpoint = _saved(dict(type='CalSFDASegmentor', stage=stage,
                             value_input='probs', value_head=saved_head))
    if refused is None:
        check_checkpoint_fits(model, checkpoint, 'ckpt')
        return
    with pytest.raises(ValueError) as err:
        check_checkpoint_fits(model, checkpoint, 'ckpt')
    assert str(err.value).startswith('ckpt: its value head was trained with '
                                     + refused)
    assert 'as in the stage-2 config that trained it' in str(err.value)


def test_checkpoints_without_a_saved_value_head_config_load():
    """A bare state dict, a config that does not parse, a model without a
    value head: nothing to compare, the checkpoint loads."""
    from tests.utils import probs_segmentor
    model = probs_segmentor(stage='target')
    state = model.state_dict()
    check_checkpoint_fits(model, state, 'ckpt')
    check_checkpoint_fits(model, dict(state_dict=state,
                                      meta=dict(cfg='model = dict(')), 'ckpt')
    check_checkpoint_fits(model, _saved(dict(type='CalSFDASegmentor',
                                             stage='value')), 'ckpt')
