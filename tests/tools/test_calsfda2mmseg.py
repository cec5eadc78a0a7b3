"""tools/model_converters/calsfda2mmseg.py: a Cal-SFDA model as a plain
MMSeg config and checkpoint."""
import glob
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmseg.apis import inference_model, init_model
from mmseg.registry import MODELS

from mmseg_calsfda.testing import load_stage_config, tiny_config
from tests.utils import load_tool, run_cli

converter = load_tool('model_converters/calsfda2mmseg')

# run in a fresh process with stock MMSeg: the plugin is never imported
LOAD_WITHOUT_PLUGIN = '''
import json, sys
import numpy as np, torch
from mmseg.apis import MMSegInferencer, inference_model, init_model
config, ckpt, img, out, original = sys.argv[1:]
try:  # the Runner's checkpoint: message hub, numpy
    torch.load(original, weights_only=True)
    refused = False
except Exception:
    refused = True
saved = torch.load(ckpt, weights_only=True)
model = init_model(config, ckpt, device='cpu')
np.save(out, inference_model(model, img).seg_logits.data.numpy())
pred = MMSegInferencer(config, ckpt, device='cpu')(img)['predictions']
print(json.dumps(dict(
    keys=sorted(saved), tensors=sorted(saved['state_dict']),
    meta=saved['meta'], model=type(model).__name__,
    pred_shape=list(pred.shape), refused=refused,
    plugin=[m for m in sys.modules if m.split('.')[0] == 'mmseg_calsfda'])))
'''


def target_model(name, synthetic_root, tmp_path):
    """A shipped stage-3 config at the tests' size (a 16-channel
    ResNet-18), and a checkpoint of it as a Runner writes one (message
    hub, numpy in the meta), with random weights."""
    cfg = tiny_config(name, synthetic_root, tmp_path / 'work', max_epochs=1)
    if cfg.model.decode_head.type == 'DepthwiseSeparableASPPHead':
        cfg.model.decode_head.c1_in_channels = 16  # ResNet-18's layer1
    # as in the shipped configs (shrink_config resizes the loaders' only)
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline
    config = str(tmp_path / name)
    cfg.dump(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    hub = MessageHub.get_instance(f'calsfda2mmseg_{name}')
    hub.update_scalar('train/loss', 1.0)
    ckpt = str(tmp_path / f'{name}.pth')
    torch.save(
        dict(state_dict=model.state_dict(), message_hub=hub.state_dict(),
             meta=dict(epoch=2, iter=np.int64(20), best_score=np.float64(1),
                       dataset_meta=dict(classes=('a', ) * 19,
                                         palette=[(1, 2, 3)] * 19))), ckpt)
    return config, ckpt


def convert(config, ckpt, out_dir):
    return run_cli([sys.executable, 'tools/model_converters/calsfda2mmseg.py',
                    config, ckpt, str(out_dir)])


def test_deeplabv3plus_loads_in_stock_mmseg(synthetic_root, tmp_path):
    """DeepLabV3+ (ResNet) stage 3 -> EncoderDecoder with MMSeg types
    only, which a fresh process loads (weights_only=True) and runs without
    the plugin, predicting exactly what the Cal-SFDA model predicts."""
    config, ckpt = target_model('deeplabv3plus_r101_gta2cs.py',
                                synthetic_root, tmp_path)
    res = convert(config, ckpt, tmp_path / 'out')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'MMSeg types only' in res.stdout
    assert 'value_head.* (8)' in res.stdout
    assert 'decode_head.loss_decode.* (1)' in res.stdout
    out_cfg = str(tmp_path / 'out' / 'deeplabv3plus_r101_gta2cs.py')
    out_ckpt = out_cfg[:-3] + '.pth'
    exported = Config.fromfile(out_cfg)
    assert 'custom_imports' not in exported
    assert converter.plugin_types(exported.model) == []
    assert exported.test_dataloader.dataset.type == 'CityscapesDataset'
    assert [m['type'] for m in exported.test_evaluator] == ['IoUMetric']

    img = sorted(glob.glob(osp.join(synthetic_root, 'cityscapes',
                                    'leftImg8bit', 'val', '*', '*.png')))[0]
    logits = tmp_path / 'logits.npy'
    res = run_cli([sys.executable, '-c', LOAD_WITHOUT_PLUGIN, out_cfg,
                   out_ckpt, img, str(logits), ckpt])
    assert res.returncode == 0, res.stderr[-3000:]
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert loaded['plugin'] == [] and loaded['model'] == 'EncoderDecoder'
    assert loaded['keys'] == ['meta', 'state_dict'] and loaded['refused']
    assert not [k for k in loaded['tensors']
                if k.startswith('value_head') or 'loss' in k]
    assert loaded['meta']['dataset_meta']['classes'] == ['a'] * 19
    assert loaded['meta']['calsfda'] == dict(
        checkpoint='deeplabv3plus_r101_gta2cs.py.pth', epoch=2, iter=20)
    assert loaded['pred_shape'] == [64, 128]
    # the Cal-SFDA model (value head and all) predicts the same logits
    calsfda = init_model(config, ckpt, device='cpu')
    expected = inference_model(calsfda, img).seg_logits.data.numpy()
    assert np.abs(expected).max() > 1e-2
    np.testing.assert_allclose(np.load(logits), expected, rtol=1e-4,
                               atol=1e-7)


def test_plugin_network_carries_custom_imports(synthetic_root, tmp_path):
    """DeepLabV2's DLV2Head is the plugin's: the exported config imports
    it, and the checkpoint has exactly the network's tensors."""
    config, ckpt = target_model('deeplabv2_gta2cs.py', synthetic_root,
                                tmp_path)
    res = convert(config, ckpt, tmp_path / 'out')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'needs the plugin for DLV2Head (custom_imports)' in res.stdout
    out_cfg = str(tmp_path / 'out' / 'deeplabv2_gta2cs.py')
    exported = Config.fromfile(out_cfg)
    assert exported.custom_imports.imports == ['mmseg_calsfda']
    assert exported.model.type == 'EncoderDecoder'
    assert converter.plugin_types(exported.model) == ['DLV2Head']
    saved = torch.load(out_cfg[:-3] + '.pth', weights_only=True)
    model = MODELS.build(exported.model)
    assert list(saved['state_dict']) == list(model.state_dict())
    model.load_state_dict(saved['state_dict'])  # strict
    # a checkpoint of another network names the tensor it lacks
    res = convert(out_cfg.replace('deeplabv2', 'x'), ckpt, tmp_path)
    assert res.returncode == 2 and 'does not exist' in res.stderr
    other, _ = target_model('deeplabv3plus_r101_gta2cs.py', synthetic_root,
                            tmp_path / 'v3')
    res = convert(other, ckpt, tmp_path / 'v3')
    assert res.returncode == 2 and res.stderr.count('\n') == 1
    assert 'the checkpoint has no' in res.stderr


@pytest.mark.parametrize('name, model_type, plugin', [
    ('deeplabv3plus_r101_gta2cs.py', 'EncoderDecoder', []),
    ('deeplabv3plus_efficientnet-lite0_gta2cs.py', 'EncoderDecoder',
     ['EfficientNetLite']),
    ('deeplabv2_r101_gta5_value.py', 'EncoderDecoder', ['DLV2Head']),
    ('ocrnet_hr18_gta2cs.py', 'CascadeEncoderDecoder', []),
    ('segformer_mit-b2_gta5_source.py', 'EncoderDecoder', []),
])
def test_shipped_configs(name, model_type, plugin):
    """Which shipped networks need the plugin; no Cal-SFDA key, no
    ImageNet initialisation, the test data as MMSeg's datasets."""
    cfg = load_stage_config(name)
    out, needs_plugin, dropped = converter.plain_config(cfg)
    assert out.model.type == model_type and needs_plugin == plugin
    assert not set(out.model) & set(converter.calsfda_keys())
    assert 'Pretrained' not in out.pretty_text
    assert 'custom_imports' in out if plugin else 'custom_imports' not in out
    dataset = out.test_dataloader.dataset
    if 'gta5' in name:
        assert dataset.type == 'BaseSegDataset'
        assert (dataset.img_suffix, dataset.seg_map_suffix) == (
            '.png', '_labelTrainIds.png')
        assert len(dataset.metainfo['classes']) == 19
    else:
        assert dataset.type == 'CityscapesDataset'
    assert all(m['type'] == 'IoUMetric' for m in out.get('test_evaluator',
                                                         []))
    assert dropped and 'IoUMetric' not in dropped
