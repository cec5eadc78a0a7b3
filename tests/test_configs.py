"""Every config under configs/ parses and builds its model."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from mmseg_calsfda.config_check import check_config
from mmseg_calsfda.config_refs import resolve_references
from tests.utils import ROOT, stage_config

MODEL_ZOO = 'https://download.openmmlab.com/mmsegmentation/'
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_there_are_configs():
    names = [osp.basename(p) for p in CONFIGS]
    for name in ('deeplabv2_r101_gta5_source.py',
                 'deeplabv2_r101_synthia_source.py',
                 'deeplabv2_r101_gta5_value.py',
                 'deeplabv2_r101_synthia_value.py', 'deeplabv2_gta2cs.py',
                 'deeplabv2_synthia2cs.py', 'segformer_mit-b2_gta5_source.py',
                 'segformer_mit-b2_gta5_value.py',
                 'segformer_mit-b2_gta2cs.py',
                 'deeplabv3plus_r101_cityscapes_source.py',
                 'deeplabv3plus_r101_cityscapes_value.py',
                 'deeplabv3plus_r101_cs2acdc.py',
                 'deeplabv3plus_r101_cs2darkzurich.py',
                 'deeplabv3plus_r101_cs2nightdriving.py',
                 'deeplabv3plus_r101_cs2bdd100k.py',
                 'deeplabv3plus_r101_mmseg-zoo_cityscapes_value.py',
                 'deeplabv3plus_r101_mmseg-zoo_cs2acdc-fog.py'):
        assert name in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(
        imports=['mmseg_calsfda'], allow_failed_imports=False)
    if cfg.load_from:  # a later stage names the previous stage's output
        # (or a checkpoint of MMSeg's model zoo)
        assert cfg.load_from.startswith(('work_dirs/', MODEL_ZOO)), \
            cfg.load_from
        # ... and must not fetch ImageNet weights it would overwrite
        assert cfg.model.get('pretrained') is None
        assert cfg.model.backbone.get('init_cfg') is None or \
            cfg.model.backbone.init_cfg.type != 'Pretrained', path
        assert cfg.load_from.endswith('.pth'), cfg.load_from
        cfg.load_from = None
    check_config(cfg)
    # batches are padded to the training crop, or whole images to the
    # batch's largest
    crops = [step['crop_size'] for step in
             cfg.train_dataloader.dataset.pipeline
             if step['type'] == 'RandomCrop']
    preprocessor = cfg.model.data_preprocessor
    if crops:
        assert tuple(preprocessor.size) == tuple(crops[0])
    else:
        assert preprocessor.size is None and preprocessor.size_divisor
    cfg.model.pretrained = None  # never download in tests
    model = MODELS.build(cfg.model)
    num_classes = model.num_classes
    dataset = cfg.train_dataloader.dataset
    classes = (dataset.get('metainfo') or {}).get(
        'classes', DATASETS.get(dataset.type).METAINFO['classes'])
    assert num_classes == len(classes), (num_classes, dataset.type)


def test_source_stage_selects_lowest_cece():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/calsfda/deeplabv2_r101_gta5_source.py'))
    assert cfg.model.calibration_loss.type == 'DiffECELoss'
    model = MODELS.build(dict(cfg.model, pretrained=None))
    # placed after the network's own CE
    assert [type(loss).__name__ for loss in model.decode_head.loss_decode
            ] == ['CrossEntropyLoss', 'DiffECELoss']
    assert cfg.default_hooks.checkpoint.save_best == 'cECE'
    assert cfg.default_hooks.checkpoint.rule == 'less'
    metrics = [m['type'] for m in cfg.val_evaluator]
    assert metrics == ['IoUMetric', 'ECEMetric']
    assert cfg.model.backbone.depth == 101
    assert cfg.model.decode_head.type == 'DLV2Head'
    assert cfg.model.pretrained == 'open-mmlab://resnet101_v1c'


def test_value_stage_loads_stage_one_and_trains_the_head_only():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/calsfda/deeplabv2_r101_gta5_value.py'))
    assert cfg.load_from == \
        'work_dirs/deeplabv2_r101_gta5_source/best_cECE.pth'
    assert cfg.model.stage == 'value' and cfg.model.freeze_segmentor
    assert cfg.model.value_head.type == 'ECEValueNetHead'
    assert cfg.val_evaluator[0].type == 'EstimatedECEMetric'
    assert cfg.val_evaluator[0].with_labels


def test_value_stage_trains_on_whole_images_at_the_evaluation_scale():
    """Stage 3 estimates the ECE of whole images: stage 2 learns on them
    (GTA5 images differ slightly in size, so batches are padded)."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/calsfda/deeplabv2_r101_gta5_value.py'))
    steps = {p['type']: p for p in cfg.train_dataloader.dataset.pipeline}
    assert 'RandomCrop' not in steps and 'RandomResize' not in steps
    test_resize = [p for p in cfg.test_pipeline if p['type'] == 'Resize']
    assert steps['Resize'] == test_resize[0]
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    images = [torch.randint(0, 255, (3, h, w), dtype=torch.uint8)
              for h, w in ((703, 1280), (705, 1278))]
    samples = []
    for img in images:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.zeros((1, ) + img.shape[1:], dtype=torch.uint8))
        samples.append(sample)
    out = preprocessor(dict(inputs=images, data_samples=samples), True)
    assert out['inputs'].shape == (2, 3, 712, 1280)


def test_target_stage_reads_no_target_labels_for_training_or_selection():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/calsfda/deeplabv2_gta2cs.py'))
    assert cfg.model.stage == 'target'
    assert 'seg_map_path' not in cfg.train_dataloader.dataset.data_prefix
    hooks = {h.type: h for h in cfg.custom_hooks}
    assert 'seg_map_path' not in hooks['SelfTrainingHook'].dataloader.dataset[
        'data_prefix']
    assert 'seg_map_path' not in cfg.val_dataloader.dataset.data_prefix
    # label-free: the value head's estimate, entropy and max probability
    assert [m.type for m in cfg.val_evaluator] == ['EstimatedECEMetric',
                                                   'ConfidenceMetric']
    ckpt = cfg.default_hooks.checkpoint
    assert (ckpt.type, ckpt.save_best, ckpt.rule) == ('ECECheckpointHook',
                                                      'estECE', 'less')
    # labels only in the report
    assert ckpt.report_dataloader.dataset.data_prefix.seg_map_path == \
        'gtFine/val'


@pytest.mark.parametrize('value, target', [
    ('deeplabv2_r101_gta5_value.py', 'deeplabv2_gta2cs.py'),
    ('deeplabv2_r101_synthia_value.py', 'deeplabv2_synthia2cs.py'),
    ('segformer_mit-b2_gta5_value.py', 'segformer_mit-b2_gta2cs.py'),
    ('deeplabv3plus_r101_cityscapes_value.py',
     'deeplabv3plus_r101_cs2darkzurich.py'),
    ('deeplabv3plus_r101_mmseg-zoo_cityscapes_value.py',
     'deeplabv3plus_r101_mmseg-zoo_cs2acdc-fog.py'),
])
def test_target_stage_builds_the_value_head_stage_two_trained(value, target):
    """The head's pooling leaves no trace in the weights: a stage-3 config
    that disagreed with its stage 2 would silently mis-estimate ECE."""
    value_cfg, target_cfg = stage_config(value), stage_config(target)
    assert value_cfg.model.value_input == target_cfg.model.value_input
    trained = MODELS.build(value_cfg.model).value_head
    used = MODELS.build(target_cfg.model).value_head
    for key in ('in_channels', 'in_index', 'pool', 'pool_size',
                'align_corners'):
        assert getattr(trained, key) == getattr(used, key), key
    assert trained.state_dict().keys() == used.state_dict().keys()
    for key, weight in trained.state_dict().items():
        assert weight.shape == used.state_dict()[key].shape, key
    steps = [p['type'] for p in value_cfg.train_dataloader.dataset.pipeline]
    assert 'PhotoMetricDistortion' in steps


def with_overrides(name, overrides):
    cfg = stage_config(name)
    cfg.merge_from_dict(overrides)
    return cfg


def test_reference_hyper_parameter_overrides():
    """The README's "reference setting" overrides give the official
    values (config/so_config.yml, rl_config.yml, adaptive_target_config.yml:
    SGD, momentum 0.9, wd 5e-4, lr 5e-5; target 600x600 crops of images
    720 on the shorter side)."""
    official = dict(type='SGD', lr=5e-5, momentum=0.9, weight_decay=5e-4)
    source = with_overrides('deeplabv2_r101_gta5_source.py', {
        'train_cfg.max_iters': 249660, 'param_scheduler': []})
    assert source.train_cfg.max_iters == 249660
    assert not source.param_scheduler
    value = with_overrides('deeplabv2_r101_gta5_value.py', {
        'optim_wrapper.optimizer': dict(official, nesterov=True,
                                        _delete_=True)})
    # nothing of Adam's left over: the optimizer builds
    from mmengine.registry import OPTIMIZERS
    OPTIMIZERS.build(dict(value.optim_wrapper.optimizer,
                          params=[torch.nn.Parameter(torch.zeros(1))]))
    target = with_overrides('deeplabv2_gta2cs.py', {})  # as shipped
    for cfg in (source, value, target):
        optimizer = cfg.optim_wrapper.optimizer
        assert {k: optimizer[k] for k in official} == official
        assert cfg.optim_wrapper.get('clip_grad') in (None, dict(
            max_norm=0.01))
    pipeline = target.train_dataloader.dataset.pipeline
    assert pipeline[2].type == 'RandomResize'
    assert pipeline[2].scale == (1440, 720)
    assert pipeline[2].ratio_range == (0.5, 1.5)
    assert pipeline[3].type == 'RandomCrop'
    assert pipeline[3].crop_size == (600, 600)
    assert target.model.data_preprocessor.size == (600, 600)


def test_reference_value_head_init_override():
    """``init_cfg=dict(type='Xavier', layer='Conv2d',
    distribution='uniform')``: the 1x1 conv is Xavier-uniform, as the
    official value net."""
    from mmseg_calsfda.models.heads import ECEValueNetHead
    torch.manual_seed(0)
    head = ECEValueNetHead(in_channels=512, channels=128, init_cfg=dict(
        type='Xavier', layer='Conv2d', distribution='uniform'))
    head.init_weights()
    bound = (6 / (512 + 128))**0.5
    weight = head.conv.weight
    assert float(weight.abs().max()) <= bound
    # PyTorch's default would stay within 1 / sqrt(fan_in) = 0.044
    assert float(weight.abs().max()) > 0.9 * bound > 1 / 512**0.5


# ------------------------------------------------- head class counts (#30)
RECIPES = osp.join(ROOT, 'configs', '_base_', 'calsfda')
KNET = 'mmseg::knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py'


def user_config(tmp_path, network: str, recipe: str = 'source_gta5',
                **overrides) -> Config:
    """A stage config as a user writes it (a network config plus a shipped
    recipe), with ``model.<key>`` overrides."""
    path = tmp_path / 'stage.py'
    path.write_text(f'_base_ = [{network!r}, '
                    f'{osp.join(RECIPES, recipe + ".py")!r}]\n'
                    'model = _base_.calsfda_model\n')
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()},
                        allow_list_keys=True)
    cfg.load_from = None
    return cfg


def network_of(tmp_path, zoo_config: str) -> str:
    """A file with just the network of a model-zoo config."""
    path = tmp_path / 'zoo.py'
    path.write_text(f'_base_ = [{zoo_config!r}]\n')
    net = str(tmp_path / 'network.py')
    Config(dict(model=Config.fromfile(str(path)).model)).dump(net)
    return net


@pytest.mark.parametrize('key', [
    'decode_head.num_classes', 'auxiliary_head.num_classes'])
def test_an_ade20k_head_on_gta5_is_named_before_training(tmp_path, key):
    """PSPNet's head or auxiliary head with ADE20K's 150 classes on the
    19-class GTA5 layout (it failed at validation, or never)."""
    cfg = user_config(tmp_path, 'mmseg::_base_/models/pspnet_r50-d8.py',
                      **{key: 150})
    with pytest.raises(ValueError, match=rf'^model\.{key} = 150, but the '
                       r'dataset has 19 classes \(train_dataloader\.dataset'
                       r"\.type = 'GTA5Dataset'\): set it to 19"):
        check_config(cfg)


KNET_HEADS = ['decode_head.kernel_generate_head',
              *(f'decode_head.kernel_update_head.{i}' for i in range(3)),
              'auxiliary_head']


@pytest.mark.parametrize('wrong', KNET_HEADS)
def test_knet_nested_head_class_counts_are_checked(tmp_path, wrong):
    cfg = user_config(tmp_path, network_of(tmp_path, KNET), **{
        f'{head}.num_classes': 19 for head in KNET_HEADS})
    check_config(cfg)
    cfg.merge_from_dict({f'model.{wrong}.num_classes': 150},
                        allow_list_keys=True)
    key = re.sub(r'\.(\d)', r'[\1]', wrong)
    with pytest.raises(ValueError, match=rf'^model\.{re.escape(key)}'
                       r'\.num_classes = 150, but the dataset has 19'):
        check_config(cfg)


def test_cascade_stage_and_metainfo_classes_are_named(tmp_path):
    cfg = user_config(tmp_path, 'mmseg::_base_/models/ocrnet_hr18.py')
    check_config(cfg)
    cfg.model.decode_head[0].num_classes = 150
    with pytest.raises(ValueError, match=r'model\.decode_head\[0\]\.'
                       r'num_classes = 150, but the dataset has 19'):
        check_config(cfg)
    # SYNTHIA's 16 classes, named by the dataset's metainfo
    cfg = stage_config('deeplabv2_synthia2cs.py')
    cfg.load_from = None
    check_config(cfg)
    cfg.model.decode_head.num_classes = 19
    with pytest.raises(ValueError, match=r'model\.decode_head\.num_classes '
                       r'= 19, but the dataset has 16 classes \(train_'
                       r'dataloader\.dataset\.metainfo\.classes\)'):
        check_config(cfg)


def test_heads_with_classes_of_their_own_or_unbuilt_pass(tmp_path):
    # STDC's detail head predicts boundaries: num_classes=2 by design
    check_config(user_config(tmp_path, 'mmseg::_base_/models/stdc.py'))
    # stage 3 builds no auxiliary head (auxiliary_losses='off')
    cfg = user_config(tmp_path, 'mmseg::_base_/models/pspnet_r50-d8.py',
                      recipe='target_gta2cs',
                      **{'auxiliary_head.num_classes': 150})
    check_config(cfg)
    cfg.model.auxiliary_losses = [dict(type='SymmetricCELoss')]
    with pytest.raises(ValueError, match=r'auxiliary_head\.num_classes'):
        check_config(cfg)


# ------------------------------------------------------- padding label (#30)
def test_padding_value_and_the_losses_padding_label_must_agree():
    """The stage-3 recipe pads pseudo-labels with seg_pad_val, the target
    losses leave out padding_label (PADDING_LABEL by default): changing
    one of them alone is named before training."""
    from mmseg_calsfda.models.losses.padding import PADDING_LABEL
    cfg = stage_config('deeplabv2_gta2cs.py')
    cfg.load_from = None
    assert cfg.model.data_preprocessor.seg_pad_val == PADDING_LABEL
    check_config(cfg)
    cfg.model.data_preprocessor.seg_pad_val = 253
    with pytest.raises(ValueError, match=(
            r'^model\.decode_losses\[1\]\.padding_label = 254 \(its '
            r'default: PADDING_LABEL in mmseg_calsfda/models/losses/'
            r'padding\.py\), but model\.data_preprocessor\.seg_pad_val = '
            r'253')):
        check_config(cfg)
    for loss in cfg.model.decode_losses[1:]:
        loss.padding_label = 253
    check_config(cfg)
    cfg.model.data_preprocessor.seg_pad_val = 254
    with pytest.raises(ValueError, match=r'decode_losses\[1\]\.padding_'
                       r'label = 253, but .*seg_pad_val = 254'):
        check_config(cfg)
    for loss in cfg.model.decode_losses[1:]:
        loss.padding_label = None  # every pixel counts: nothing to agree
    check_config(cfg)


# ------------------------------------------------------ class defaults (#29)
# Options whose recipe value depends on the stage: no one value to default to
STAGE_OPTIONS = {
    ('CalSFDASegmentor', 'stage'), ('CalSFDASegmentor', 'auxiliary_losses'),
    ('EstimatedECEMetric', 'with_labels'), ('ECECheckpointHook', 'save_best'),
    ('ECECheckpointHook', 'report_key')
}


def _explicit_options(obj, where):
    """``(where, type, key, value, class default)`` of every option a
    recipe sets on one of this package's registered components."""
    import inspect

    from mmseg.registry import HOOKS, METRICS, TASK_UTILS
    if isinstance(obj, dict):
        cls = None
        if isinstance(obj.get('type'), str):
            for registry in (MODELS, HOOKS, METRICS, TASK_UTILS, DATASETS):
                cls = cls or registry.get(obj['type'])
        if cls is not None and cls.__module__.startswith('mmseg_calsfda'):
            params = inspect.signature(cls.__init__).parameters
            for key, value in obj.items():
                if key in params and params[key].default is not \
                        inspect.Parameter.empty:
                    yield (where, obj['type'], key, value,
                           params[key].default)
        for key, value in obj.items():
            yield from _explicit_options(value, f'{where}.{key}')
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _explicit_options(value, f'{where}[{i}]')


@pytest.mark.parametrize('recipe',
                         ['source_gta5', 'value_gta5', 'target_gta2cs'])
def test_class_defaults_are_the_recipes_values(recipe):
    """docs/differences.md's rule: a class's default is the value the
    shipped recipe uses. A recipe may still set an option explicitly, to
    the same value; it differs only to add a component (a default of None)
    or where the value depends on the stage."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(RECIPES, recipe + '.py')).to_dict()
    differ = [(where, type_, key, value, default)
              for where, type_, key, value, default in _explicit_options(
                  cfg, recipe)
              if default is not None and (type_, key) not in STAGE_OPTIONS
              and (tuple(value) if isinstance(value, list) else value)
              != default]
    assert not differ


# ------------------------------------------- every dataloader's data (#40)
HOOK_DATALOADER_KEYS = ('dataloader', 'bn_warmup_dataloader',
                        'report_dataloader')


def dataloaders(cfg: Config):
    """``(key, dataloader)`` of every dataloader in a config, its
    ``'${key}'`` references resolved as the Runner resolves them: the
    Runner's, the other top-level ones and the hooks'."""
    cfg = resolve_references(cfg)
    for name, loader in cfg.items():
        if name.endswith('_dataloader') and isinstance(loader, dict):
            yield name, loader
    hooks = [(f'custom_hooks[{i}]', h)
             for i, h in enumerate(cfg.get('custom_hooks', []))]
    hooks += [(f'default_hooks.{k}', h)
              for k, h in (cfg.get('default_hooks') or {}).items()]
    for where, hook in hooks:
        for key in HOOK_DATALOADER_KEYS:
            loader = (hook or {}).get(key)
            assert loader is None or isinstance(loader, dict), \
                f'{where}.{key} = {loader!r}'
            if loader is not None:
                yield f'{where}.{key}', loader


# the data each config reads, by a part of its name (first match)
DATA_ROOTS = (('cs2acdc', 'data/acdc/'),
              ('cs2darkzurich', 'data/dark_zurich/'),
              ('cs2nightdriving', 'data/NighttimeDrivingTest/'),
              ('cs2bdd100k', 'data/bdd100k/'),
              ('2folder', 'data/target_images/'), ('2cs', 'data/cityscapes/'),
              ('cityscapes_', 'data/cityscapes/'), ('gta5_', 'data/gta/'),
              ('synthia_', 'data/synthia/'))


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_every_dataloader_reads_the_configs_data(path):
    """Including the copies or references inside custom_hooks and
    default_hooks.checkpoint: a child config that changes the data must
    change them too."""
    name = osp.basename(path)
    root = next(root for part, root in DATA_ROOTS if part in name)
    cfg = Config.fromfile(path)
    loaders = dict(dataloaders(cfg))
    assert {'train_dataloader', 'val_dataloader'} <= set(loaders)
    for key, loader in loaders.items():
        assert loader['dataset']['data_root'] == root, key
    if cfg.model.stage != 'target':
        return
    # the pass and the BN warm-up (SelfTrainingHook's own, BNWarmupHook's)
    # or the report
    hooks = [key for key in loaders if 'hooks' in key]
    assert len(hooks) == 3, list(loaders)

    def prefix(loader):
        return loader['dataset'].get('data_prefix') or {}

    def images(loader):
        dataset = loader['dataset']
        return (prefix(loader).get('img_path'), dataset.get('split'),
                dataset.get('conditions'))

    # the pass, the BN warm-up and the estimation read the train images;
    # the report and the test (where the config has them) the labelled ones
    unlabelled = [k for k in loaders if 'seg_map_path' not in
                  prefix(loaders[k])]
    labelled = sorted(set(loaders) - set(unlabelled))
    assert len({images(loaders[k]) for k in unlabelled}) == 1, unlabelled
    if cfg.get('report_dataloader') is not None:
        assert len({images(loaders[k]) for k in labelled}) == 1, labelled
        assert 'test_dataloader' in labelled and len(labelled) >= 2
    else:
        assert not labelled, labelled
    if 'acdc-fog' in name:
        assert {images(loaders[k])[2] for k in loaders} == {('fog', )}


def test_a_wrong_hook_dataloader_is_named_before_training():
    """A reference to a key the config lacks, a bare key name where a
    dataloader belongs, a misspelt dataset type in a top-level dataloader
    only a hook reads: each is named before anything is built."""
    cfg = stage_config('deeplabv3plus_r101_cs2acdc.py')
    cfg.load_from = None
    check_config(cfg)
    cfg.custom_hooks[1].dataloader = '${estimation_dataloder}'
    with pytest.raises(KeyError, match=r"custom_hooks\[1\]\.dataloader = "
                       r"'\$\{estimation_dataloder\}', but the config has "
                       "no key 'estimation_dataloder'"):
        check_config(cfg)
    cfg.custom_hooks[1].dataloader = 'estimation_dataloader'
    with pytest.raises(ValueError, match=r"^custom_hooks\[1\]\.dataloader = "
                       r"'estimation_dataloader' is a string: .* write a "
                       r"reference to it: '\$\{estimation_dataloader\}'"):
        check_config(cfg)
    cfg = stage_config('deeplabv3plus_r101_cs2acdc.py')
    cfg.load_from = None
    cfg.pseudo_label_dataloader.dataset.type = 'ACDCDatset'
    with pytest.raises(KeyError, match=r"^\"pseudo_label_dataloader\.dataset"
                       r"\.type = 'ACDCDatset' is not registered"):
        check_config(cfg)
