"""EfficientNetLite: ImageNet weights from the installed packages, loaded
completely, computing what they were trained to compute."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS

from mmseg_calsfda.models.backbones.efficientnet_lite import Conv2dSame
from mmseg_calsfda.models.backbones.efficientnet_lite_checkpoint import (
    package_file,
)
from tests.utils import ROOT

ARCHS = ('lite0', 'lite1', 'lite2')
# stage output channels; strides 2, 4, 8, 16, 16, 32, 32 at the defaults
CHANNELS = dict(lite0=(16, 24, 40, 80, 112, 192, 320),
                lite1=(16, 24, 40, 80, 112, 192, 320),
                lite2=(16, 24, 48, 88, 120, 208, 352))
STRIDES = (2, 4, 8, 16, 16, 32, 32)
CATS = (281, 282, 283, 284, 285)  # tabby, tiger, Persian, Siamese, Egyptian
ESPRESSO = 967
# The file's part names and ours, written out independently of the
# converter: (file prefix, our prefix) for the stem and a block's parts.
STEM = {'_conv_stem.': 'stem.conv.', '_bn0.': 'stem.bn.'}
BLOCK = {'_expand_conv.': 'expand.conv.', '_bn0.': 'expand.bn.',
         '_depthwise_conv.': 'depthwise.conv.', '_bn1.': 'depthwise.bn.',
         '_project_conv.': 'project.conv.', '_bn2.': 'project.bn.'}
TAIL = ('_conv_head.', '_bn1.', '_fc.')


def pretrained(arch: str = 'lite0', **kwargs):
    model = MODELS.build(dict(
        type='EfficientNetLite', arch=arch,
        init_cfg=dict(type='Pretrained',
                      checkpoint=f'efficientnet-lite://{arch}'), **kwargs))
    model.init_weights()
    return model.eval()


def raw_file(arch: str) -> dict:
    return torch.load(package_file(arch), map_location='cpu',
                      weights_only=True)


def our_name(key: str) -> str:
    if key.startswith('_blocks.'):
        _, index, rest = key.split('.', 2)
        part = next(p for p in BLOCK if rest.startswith(p))
        return f'blocks.{index}.{BLOCK[part]}{rest[len(part):]}'
    part = next(p for p in STEM if key.startswith(p))
    return STEM[part] + key[len(part):]


@pytest.mark.parametrize('arch', ARCHS)
def test_every_feature_tensor_of_the_file_is_loaded(arch):
    model = pretrained(arch, out_indices=(6, ))
    ours = model.state_dict()
    raw = raw_file(arch)
    features = {k: v for k, v in raw.items() if not k.startswith(TAIL)}
    assert len(raw) - len(features) == 8  # conv, BN (5), linear (2)
    assert len(features) == len(ours)
    for key, value in features.items():
        assert torch.equal(ours[our_name(key)], value), key


def classify(model, tail: dict, image) -> torch.Tensor:
    """ImageNet class probabilities: the backbone, then the file's own
    classifier tail (1x1 conv to 1280, BN, ReLU6, pooling, linear)."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(224, 224), mode='bilinear',
                      align_corners=False)
    x = (x - 127.5) / 127.5  # the data preprocessor's mean = std = 127.5
    with torch.no_grad():
        h = F.conv2d(model(x)[0], tail['_conv_head.weight'])
        h = F.batch_norm(h, tail['_bn1.running_mean'],
                         tail['_bn1.running_var'], tail['_bn1.weight'],
                         tail['_bn1.bias'], eps=1e-3)
        h = F.relu6(h).mean((2, 3))
        return F.linear(h, tail['_fc.weight'], tail['_fc.bias']).softmax(1)[0]


@pytest.mark.parametrize('arch', ARCHS)
def test_classifies_bundled_photos_as_imagenet(arch):
    """A wrong activation or input normalisation fails here (ReLU gives
    espresso 0.19 on lite0, ImageNet mean/std 0.71); padding and eps have
    their own tests below, their error being too small to see here."""
    data = pytest.importorskip('skimage.data')
    model = pretrained(arch, out_indices=(6, ))
    tail = raw_file(arch)
    cat = classify(model, tail, data.chelsea())
    assert cat.argmax().item() in CATS
    assert set(cat.topk(5).indices.tolist()) >= set(CATS) - {283, 284}
    coffee = classify(model, tail, data.coffee())
    assert coffee.argmax().item() == ESPRESSO
    assert coffee[ESPRESSO] > 0.85


@pytest.mark.parametrize('size,kernel,stride,dilation,pads', [
    # TensorFlow 'SAME': (top/left, bottom/right); the odd pixel goes last
    (8, 3, 2, 1, (0, 1)),
    (7, 3, 2, 1, (1, 1)),
    (8, 5, 2, 1, (1, 2)),
    (8, 3, 1, 1, (1, 1)),
    (8, 3, 1, 2, (2, 2)),
    (8, 5, 1, 2, (4, 4)),
    (8, 1, 1, 1, (0, 0)),
])
def test_same_padding_is_tensorflows(size, kernel, stride, dilation, pads):
    torch.manual_seed(0)
    conv = Conv2dSame(2, 3, kernel, stride=stride, dilation=dilation)
    x = torch.randn(1, 2, size, size)
    before, after = pads
    expected = F.conv2d(F.pad(x, [before, after, before, after]),
                        conv.weight, conv.bias, stride, 0, dilation)
    out = conv(x)
    assert out.shape[-1] == -(-size // stride)
    torch.testing.assert_close(out, expected)


def test_norm_layers_use_the_weights_eps():
    model = MODELS.build(dict(type='EfficientNetLite'))
    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.eps == 1e-3 for m in norms)
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', '_base_', 'models',
        'deeplabv3plus_efficientnet-lite0.py'))
    assert cfg.model.backbone.norm_cfg.eps == 1e-3
    assert cfg.model.data_preprocessor.mean == [127.5] * 3
    assert cfg.model.data_preprocessor.std == [127.5] * 3
    assert cfg.model.data_preprocessor.bgr_to_rgb


@pytest.mark.parametrize('arch', ARCHS)
def test_channels_and_strides_per_out_index(arch):
    model = MODELS.build(dict(type='EfficientNetLite', arch=arch,
                              out_indices=tuple(range(7)))).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 128))
    assert tuple(o.shape[1] for o in outs) == CHANNELS[arch]
    assert tuple(64 // o.shape[2] for o in outs) == STRIDES
    assert model.out_channels == list(CHANNELS[arch])
    reordered = MODELS.build(dict(type='EfficientNetLite', arch=arch,
                                  out_indices=(4, 1))).eval()
    reordered.load_state_dict(model.state_dict())
    with torch.no_grad():
        second = reordered(torch.randn(1, 3, 64, 128))
    assert [o.shape[1] for o in second] == [CHANNELS[arch][4],
                                            CHANNELS[arch][1]]


def _randomise_norms(model) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_()
            m.bias.data.normal_()


@pytest.mark.parametrize('strides,dilations,grid', [
    # output stride 8: stages 3-6 on the 1/8 grid
    ((1, 2, 2, 1, 1, 1, 1), (1, 1, 1, 2, 2, 4, 4),
     (1, 1, 1, 2, 2, 4, 4)),
    # output stride 16 (the shipped network): stages 5-6 on the 1/16 grid
    ((1, 2, 2, 2, 1, 1, 1), (1, 1, 1, 1, 1, 2, 2),
     (1, 1, 1, 1, 1, 2, 2)),
])
def test_dilated_network_computes_the_strided_one_on_a_finer_grid(
        strides, dilations, grid):
    """A stride-2 'same' convolution's output m sits on input pixel 2m + 1
    (even sizes), so the strided map is the dilated one at offset
    ``grid - 1`` with step ``grid``."""
    torch.manual_seed(0)
    strided = MODELS.build(dict(type='EfficientNetLite',
                                out_indices=tuple(range(7))))
    _randomise_norms(strided)
    dilated = MODELS.build(dict(type='EfficientNetLite', strides=strides,
                                dilations=dilations,
                                out_indices=tuple(range(7))))
    dilated.load_state_dict(strided.state_dict())
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        coarse = strided.eval()(x)
        fine = dilated.eval()(x)
    for stage, (c, f, step) in enumerate(zip(coarse, fine, grid)):
        assert f.shape[-2] == c.shape[-2] * step, stage
        torch.testing.assert_close(f[..., step - 1::step, step - 1::step], c,
                                   rtol=1e-4, atol=1e-4)


def test_weights_of_another_arch_are_refused(tmp_path):
    model = MODELS.build(dict(
        type='EfficientNetLite', arch='lite0',
        init_cfg=dict(type='Pretrained',
                      checkpoint='efficientnet-lite://lite1')))
    with pytest.raises(RuntimeError, match=r'unused by the backbone.*'
                       r'blocks\.16.*Is arch the one'):
        model.init_weights()


def test_a_file_missing_a_tensor_is_refused(tmp_path):
    raw = raw_file('lite0')
    del raw['_blocks.3._depthwise_conv.weight']
    path = str(tmp_path / 'partial.pth')
    torch.save(raw, path)
    model = MODELS.build(dict(
        type='EfficientNetLite',
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(RuntimeError, match=r'1 tensors missing from the '
                       r'file: blocks\.3\.depthwise\.conv\.weight'):
        model.init_weights()


def test_segmentor_checkpoint_with_prefix_loads(tmp_path):
    """``prefix='backbone.'`` takes the backbone out of a whole model's
    checkpoint, e.g. a stage-1 run's."""
    source = pretrained()
    path = str(tmp_path / 'segmentor.pth')
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in
                                source.state_dict().items()}), path)
    model = MODELS.build(dict(
        type='EfficientNetLite',
        init_cfg=dict(type='Pretrained', checkpoint=path,
                      prefix='backbone.')))
    model.init_weights()
    torch.testing.assert_close(model.state_dict(), source.state_dict())


def test_unknown_arch_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"efficientnet-lite://lite9: .* one "
                       r"of \('lite0', 'lite1', 'lite2'\), got 'lite9'"):
        CheckpointLoader.load_checkpoint('efficientnet-lite://lite9')
    with pytest.raises(ValueError,
                       match="EfficientNetLite: arch must be .* got 'b0'"):
        MODELS.build(dict(type='EfficientNetLite', arch='b0'))
    with pytest.raises(ValueError, match='one value per stage'):
        MODELS.build(dict(type='EfficientNetLite', strides=(1, 2)))


def test_frozen_stages_and_norm_eval():
    model = MODELS.build(dict(type='EfficientNetLite', frozen_stages=2,
                              norm_eval=True))
    model.train()
    frozen = [model.stem, *model.blocks[:model.stage_ends[1]]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad
               for p in model.blocks[model.stage_ends[1]].parameters())
    assert all(not m.training for m in model.modules()
               if isinstance(m, torch.nn.BatchNorm2d))
    assert model.blocks[-1].training


def test_shipped_stage_config_starts_from_imagenet_weights():
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'calsfda',
        'deeplabv3plus_efficientnet-lite0_gta5_source.py'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    raw = raw_file('lite0')
    torch.testing.assert_close(model.backbone.stem.conv.weight,
                               raw['_conv_stem.weight'])
    torch.testing.assert_close(
        model.backbone.blocks[15].project.bn.running_var,
        raw['_blocks.15._bn2.running_var'])
