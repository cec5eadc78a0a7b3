"""Cal-SFDA on MMSeg's own networks: each one runs stage 1 -> 2 -> 3.

Each architecture's stage configs are written as a user would write them:
MMSeg's network config, read through ``mmseg::``, plus the shipped stage
recipe (``configs/_base_/calsfda/``), ``model = _base_.calsfda_model``. Only
the data, the schedule and (for speed) a few sizes are then shrunk. What is
checked per architecture:

* stage 1 logs DiffECE on the head that makes the final logits (and the
  auxiliary heads keep their own losses);
* stage 2: the value head reads exactly the class probabilities of the
  final logits, which are what MMSeg's own inference code computes for that
  network (``EncoderDecoder`` / ``CascadeEncoderDecoder.encode_decode``);
* stage 3: the pseudo-labels are the model's own predictions where kept,
  the decode head trained, and the checkpoint was selected by estimated ECE.
"""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.models.segmentors import CascadeEncoderDecoder, EncoderDecoder
from mmseg.registry import MODELS, RUNNERS
from PIL import Image

from mmseg_calsfda.datasets.pseudo_label_dataset import pseudo_label_path
from mmseg_calsfda.models.segmentors import CalSFDASegmentor
from mmseg_calsfda.testing import shrink_config
from tests.utils import ROOT, scalars

RECIPES = osp.join(ROOT, 'configs', '_base_', 'calsfda')
NUM_CLASSES = 19
# e.g. 'bfloat16': every stage under AMP (CUDA; tools/benchmark/gpu_checks.sh)
AMP = os.environ.get('CALSFDA_TEST_AMP')

# name: (MMSeg network config, options of model for a small CPU run)
ARCHITECTURES = {
    # ResNet + auxiliary FCN head; pyramid pooling (BN on 1x1 pooled maps)
    'pspnet_r50-d8': ('mmseg::_base_/models/pspnet_r50-d8.py', {}),
    # ASPP, depthwise separable
    'deeplabv3plus_r50-d8': (
        'mmseg::_base_/models/deeplabv3plus_r50-d8.py', {}),
    # Swin + UPerNet (+ auxiliary head)
    'upernet_swin-t': ('mmseg::_base_/models/upernet_swin.py',
                       {'backbone.depths': [1, 1, 1, 1]}),
    # MiT + all-MLP head
    'segformer_mit-b0': ('mmseg::_base_/models/segformer_mit-b0.py', {}),
    # plain ViT + mask transformer head (ViT-T sizes)
    'segmenter_vit-t': ('mmseg::_base_/models/segmenter_vit-b16_mask.py', {
        'backbone.embed_dims': 192, 'backbone.num_heads': 3,
        'backbone.num_layers': 2, 'decode_head.in_channels': 192,
        'decode_head.channels': 192, 'decode_head.embed_dims': 192,
        'decode_head.num_heads': 3, 'decode_head.num_layers': 1,
        'decode_head.num_classes': NUM_CLASSES}),
    # HRNet cascade: FCN head -> OCR head
    'ocrnet_hr18': ('mmseg::_base_/models/ocrnet_hr18.py', {}),
    # cascade with a point head: FPN head -> subdivision refinement
    'pointrend_r50': ('mmseg::_base_/models/pointrend_r50.py', {
        'test_cfg.subdivision_steps': 1,
        'test_cfg.subdivision_num_points': 256}),
    # STDC: BN on globally pooled context + boundary auxiliary head
    'stdc1': ('mmseg::_base_/models/stdc.py', {}),
    # BiSeNetV2: BN on pooled features in the semantic branch, 4 aux heads
    'bisenetv2': ('mmseg::_base_/models/bisenetv2.py', {}),
    # ResNet + FPN neck
    'fpn_r50': ('mmseg::_base_/models/fpn_r50.py', {}),
    # the shipped ImageNet-pretrained network: DeepLabV3+ on
    # EfficientNet-Lite0 (TF 'same' padding, dilated, SyncBN eps 1e-3)
    'deeplabv3plus_efficientnet-lite0': (osp.join(
        ROOT, 'configs', '_base_', 'models',
        'deeplabv3plus_efficientnet-lite0.py'), {}),
    # K-Net: iterative kernel-update heads (no model file of its own in
    # MMSeg: the network of its model-zoo config)
    'knet-s3_r50-d8_fcn': (
        'mmseg::knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py', {
            'decode_head.kernel_generate_head.num_classes': NUM_CLASSES,
            **{f'decode_head.kernel_update_head.{i}.num_classes': NUM_CLASSES
               for i in range(3)},
            'auxiliary_head.num_classes': NUM_CLASSES}),
}


def _network_file(tmp_path, source: str) -> str:
    """``source`` itself when it holds only a network; else (a full model
    zoo config) a file with just its network."""
    if '_base_/models/' in source:
        return source
    path = str(tmp_path / 'network.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{source!r}]\n')
    zoo = Config.fromfile(path)
    Config(dict(model=zoo.model, data_preprocessor=zoo.data_preprocessor,
                norm_cfg=zoo.get('norm_cfg'))).dump(path)
    return path


def _stage_cfg(tmp_path, network: str, recipe: str, overrides: dict,
               synthetic_root, work_dir, **kwargs) -> Config:
    """The stage config a user writes, shrunk to tiny data."""
    path = tmp_path / f'{recipe}.py'
    path.write_text(
        f'_base_ = [{network!r}, {osp.join(RECIPES, recipe + ".py")!r}]\n'
        'model = _base_.calsfda_model\n')
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()},
                        allow_list_keys=True)
    cfg.model.backbone.init_cfg = None
    kwargs.setdefault('max_iters', 2)
    cfg = shrink_config(cfg, synthetic_root, str(work_dir),
                        image_size=(64, 128), crop=64, num_evals=1,
                        batch_size=2, lr=1e-3, network=False, **kwargs)
    cfg.default_hooks.logger.interval = 1
    if AMP:
        cfg.optim_wrapper.update(type='AmpOptimWrapper', dtype=AMP)
    return cfg


def _mmseg_logits(model, inputs, metas):
    """Final logits at the input size, by MMSeg's own inference code."""
    reference = (CascadeEncoderDecoder if model.num_stages else
                 EncoderDecoder).encode_decode
    return reference(model, inputs, metas)


def _check_value_input(model, inputs) -> None:
    """The value head reads softmax of the logits MMSeg predicts with."""
    seen = []
    handle = model.value_head.register_forward_pre_hook(
        lambda module, args: seen.append(args[0][0]))
    metas = model._image_metas(inputs)
    with torch.no_grad():
        model.eval()
        model.predict(inputs)
        feats = model.extract_feat(inputs)
        logits = model.decode_logits(feats, metas)
        reference = _mmseg_logits(model, inputs, metas)
    handle.remove()
    probs = seen[0]
    assert probs.shape[1] == NUM_CLASSES == model.value_head.in_channels
    torch.testing.assert_close(probs, logits.softmax(1))
    torch.testing.assert_close(
        model.final_head.predict_by_feat(logits, metas), reference)


def _recorded_predictions(monkeypatch) -> dict:
    """Records the label map each image is first predicted with."""
    predictions = {}
    predict = CalSFDASegmentor.predict

    def spy(self, inputs, data_samples=None):
        results = predict(self, inputs, data_samples)
        for sample in results:
            # the first: the pseudo-label pass, before any training
            predictions.setdefault(sample.img_path,
                                   sample.pred_sem_seg.data[0].cpu().numpy())
        return results

    monkeypatch.setattr(CalSFDASegmentor, 'predict', spy)
    return predictions


@pytest.mark.slow
@pytest.mark.parametrize('name', list(ARCHITECTURES))
def test_three_stages_on_model_zoo_network(name, synthetic_root, tmp_path,
                                           monkeypatch):
    source, overrides = ARCHITECTURES[name]
    network = _network_file(tmp_path, source)
    cfg = _stage_cfg(tmp_path, network, 'source_gta5', overrides,
                     synthetic_root, tmp_path / 'src')
    RUNNERS.build(cfg).train()
    logged = set().union(*(line.keys() for line in scalars(tmp_path / 'src')))
    heads = cfg.model.decode_head
    final = f'decode_{len(heads) - 1}' if isinstance(heads, list) else \
        'decode'
    # K-Net logs each kernel-update stage's: decode.loss_ece.s0 ... s3
    assert any(k.startswith(final) and 'loss_ece' in k
               for k in logged), sorted(logged)
    assert not any(k.startswith('aux') and 'loss_ece' in k for k in logged)
    if cfg.model.get('auxiliary_head'):
        assert any(k.startswith('aux') for k in logged)

    cfg = _stage_cfg(tmp_path, network, 'value_gta5', overrides,
                     synthetic_root, tmp_path / 'value')
    cfg.load_from = str(tmp_path / 'src' / 'best_cECE.pth')
    runner = RUNNERS.build(cfg)
    runner.train()
    batch = next(iter(runner.val_dataloader))
    inputs = runner.model.data_preprocessor(batch, False)['inputs']
    _check_value_input(runner.model, inputs)

    cfg = _stage_cfg(tmp_path, network, 'target_gta2cs', overrides,
                     synthetic_root, tmp_path / 'target', max_epochs=1)
    cfg.load_from = str(tmp_path / 'value' / 'best_ece_mse.pth')
    cfg.custom_hooks[0].epochs_per_round = 1
    cfg.custom_hooks[0].bn_warmup_batches = 2
    cfg.custom_hooks[1].num_batches = 2
    cfg.custom_hooks[0].tent_first_epoch = False  # train the decode head
    predictions = _recorded_predictions(monkeypatch)
    runner = RUNNERS.build(cfg)
    before = {k: v.clone() for k, v in
              runner.model.final_head.state_dict().items()}
    runner.train()
    assert not runner.model.with_auxiliary_head  # 'off' in stage 3
    after = runner.model.final_head.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before
               if after[k].is_floating_point())

    round_dir = str(tmp_path / 'target' / 'pseudo_labels' / 'round_0')
    dataset = runner.train_dataloader.dataset
    images = [p for p in predictions if 'train' in p]
    assert len(images) == len(dataset)
    kept = 0
    for image in images:
        label = np.array(Image.open(pseudo_label_path(
            round_dir, image, dataset.data_prefix['img_path'],
            dataset.img_suffix)))
        mask = label != 255
        kept += mask.sum()
        np.testing.assert_array_equal(label[mask],
                                      predictions[image][mask])
    assert kept > 0
    selection = json.loads(
        (tmp_path / 'target' / 'selection.json').read_text())
    assert 'estECE' in selection['selected']
    # the other label-free criteria, recorded beside it
    assert {'entropy', 'max_prob'} <= set(selection['selected'])


def test_cascade_final_logits_differ_from_first_stage(synthetic_root):
    """The check above can fail: OCRNet's first stage is not its output."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'calsfda',
                                   'ocrnet_hr18_gta5_source.py'))
    cfg.model.pretrained = None
    model = MODELS.build(cfg.model).eval()
    inputs = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        first = model.decode_head[0].forward(feats)
        final = model.decode_logits(feats)
    assert final.shape == first.shape
    assert not torch.allclose(final, first)


def test_checkpoint_of_one_stage_loads_into_the_next(tmp_path):
    """Stage-3 configs load stage-2 weights without the auxiliary head."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'calsfda',
                                   'deeplabv3plus_r101_gta5_value.py'))
    cfg.model.backbone.depth = 18
    cfg.model.decode_head.update(in_channels=512, c1_in_channels=64)
    cfg.model.auxiliary_head.in_channels = 256
    model = MODELS.build(cfg.model)
    path = str(tmp_path / 'value.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    target = Config.fromfile(osp.join(ROOT, 'configs', 'calsfda',
                                      'deeplabv3plus_r101_gta2cs.py'))
    target.model.backbone.depth = 18
    target.model.decode_head.update(in_channels=512, c1_in_channels=64)
    adapted = MODELS.build(target.model)
    assert not adapted.with_auxiliary_head
    load_checkpoint(adapted, path)
    torch.testing.assert_close(adapted.value_head.state_dict(),
                               model.value_head.state_dict())
