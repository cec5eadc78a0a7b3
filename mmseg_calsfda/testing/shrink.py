"""Shrinks a stage config to a CPU-sized run on the procedural benchmark.

The demo (``tools/demo.py``), the lab (``projects/calsfda_lab``), the
performance benchmark and the integration tests run the *real* stage
configs under ``configs/calsfda/`` with only this changed: a small ResNetV1c
backbone (no ImageNet weights), the generated data, small images and crops,
and a short schedule. Everything that defines a stage -- losses, segmentor
stage, hooks, metrics, checkpoint selection -- stays as the config says.
"""
import os
import os.path as osp
import uuid
from typing import Optional, Tuple

from mmengine.config import Config, ConfigDict

from ..config_refs import reference_key
from ..models.segmentors import value_head_reads_backbone
from ..utils import CONFIGS_DIRS, shipped_configs_dir

#: The checkout's root (the folder above this package; in an installed
#: package, the folder that holds it).
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: The shipped stage configs, ``<configs>/calsfda`` (the checkout's or the
#: installed copy, :func:`~mmseg_calsfda.utils.shipped_configs_dir`), or
#: None if this installation has none.
_CONFIGS_DIR = shipped_configs_dir()
CONFIGS = osp.join(_CONFIGS_DIR, 'calsfda') if _CONFIGS_DIR else None


def load_stage_config(name: str) -> Config:
    """A shipped stage config, ``configs/calsfda/<name>``, as it is.

    Raises:
        FileNotFoundError: This installation has no shipped configs (the
            message names the paths looked at), or none called ``name``.
    """
    if CONFIGS is None:
        raise FileNotFoundError(
            f'no shipped configs: neither {CONFIGS_DIRS[0]}/calsfda (a '
            f'checkout) nor {CONFIGS_DIRS[1]}/calsfda (an installed wheel) '
            'exists; use a checkout or reinstall mmseg_calsfda with '
            '`pip install .` from one')
    return Config.fromfile(osp.join(CONFIGS, name))


def _loaders(cfg: Config):
    """Every dataloader config: the top-level ``*_dataloader`` keys (the
    Runner's, the stage-3 recipes' ``pseudo_label_dataloader``,
    ``estimation_dataloader``, ``report_dataloader``) and those inside
    hooks; a ``'${key}'`` reference is shrunk where it points."""
    for name in cfg.keys():
        if name.endswith('_dataloader') and isinstance(
                cfg[name], (dict, ConfigDict)) and cfg[name].get('dataset'):
            yield cfg[name]
    hooks = list(cfg.get('custom_hooks', [])) + list(
        (cfg.get('default_hooks') or {}).values())
    for hook in hooks:
        for key in ('dataloader', 'bn_warmup_dataloader',
                    'report_dataloader'):
            if isinstance((hook or {}).get(key), (dict, ConfigDict)):
                yield hook[key]


def _set_pipeline_sizes(pipeline: list, scale: Tuple[int, int],
                        crop: Tuple[int, int]) -> None:
    for step in pipeline:
        if step['type'] in ('RandomResize', 'Resize'):
            step['scale'] = scale
        elif step['type'] == 'RandomCrop':
            step['crop_size'] = crop


def _shrink_network(model: ConfigDict, depth: int,
                    base_channels: int) -> None:
    """A small ResNetV1c (or one-layer-per-stage MiT) of ``base_channels``
    width, the decode head (and a backbone-reading value head) to match."""
    if model.backbone.type == 'MixVisionTransformer':
        dims = [base_channels * 2**i for i in range(4)]
        model.backbone.update(embed_dims=base_channels,
                              num_layers=[1, 1, 1, 1], num_heads=[1, 2, 4, 8],
                              init_cfg=None)
        model.decode_head.update(in_channels=dims, channels=base_channels * 2)
        if value_head_reads_backbone(model):
            model.value_head.in_channels = dims[-1]
    else:
        resize_resnet(model, depth, base_channels)
    if model.decode_head.type == 'DLV2Head':
        model.decode_head.dilations = (2, 4, 6, 8)


def resize_resnet(model: ConfigDict, depth: int,
                  base_channels: int = 64) -> None:
    """A ResNet backbone of ``depth`` and ``base_channels``; the decode head
    (and a backbone-reading value head) read its last stage's channels
    (``8 x base_channels``, four times that for bottleneck depths >= 50).
    A DeepLabV3+ head's low-level input (``c1_in_channels``) gets the first
    stage's channels, an auxiliary head those of the stage it reads
    (``in_index``)."""
    def stage_channels(index: int) -> int:
        return base_channels * 2**index * (4 if depth >= 50 else 1)

    feat_channels = stage_channels(3)
    model.backbone.update(depth=depth, base_channels=base_channels)
    model.decode_head.in_channels = feat_channels
    if 'c1_in_channels' in model.decode_head:
        model.decode_head.c1_in_channels = stage_channels(0)
    aux = model.get('auxiliary_head')
    for head in (aux if isinstance(aux, list) else [aux]):
        if isinstance(head, dict) and isinstance(head.get('in_index'), int):
            head.in_channels = stage_channels(head.in_index)
    if value_head_reads_backbone(model):
        model.value_head.in_channels = feat_channels


def shrink_config(cfg: Config,
                  data_dir: str,
                  work_dir: str,
                  image_size: Tuple[int, int] = (128, 256),
                  crop: int = 128,
                  max_iters: int = 200,
                  max_epochs: Optional[int] = None,
                  num_evals: int = 4,
                  batch_size: int = 4,
                  depth: int = 18,
                  base_channels: int = 64,
                  lr: Optional[float] = None,
                  seed: int = 0,
                  network: bool = True) -> Config:
    """Adapts a stage config for a small CPU run (in place).

    Args:
        cfg (Config): A stage config.
        data_dir (str): Root of the generated benchmark (``gta/``,
            ``cityscapes/``); each dataloader's ``data_root`` keeps its last
            path component (``data/gta`` -> ``<data_dir>/gta``); a
            ``'${key}'`` reference is left to the key it names.
        work_dir (str): The run's work_dir.
        image_size (tuple[int, int]): ``(height, width)`` of the images.
        crop (int): Square training crop.
        max_iters (int): Training iterations (iteration-based loops).
        max_epochs (int, optional): Training epochs (epoch-based loops, e.g.
            the target stage); validation and checkpoints every epoch.
        num_evals (int): Validations/checkpoints over an iteration-based
            run.
        batch_size (int): Training batch size.
        depth (int): ResNetV1c depth (18 or 34 keep it fast).
        base_channels (int): Width of the backbone's first stage (a
            MixVisionTransformer gets one layer per stage and this width).
        lr (float, optional): Learning rate; None keeps the config's.
        seed (int): Random seed.
        network (bool): Shrink the network (a ResNetV1c or MiT backbone
            and its decode head) as ``depth``/``base_channels`` say; False
            keeps any network as its config defines it.

    Returns:
        Config: ``cfg``.
    """
    height, width = image_size
    model = cfg.model
    model.pretrained = None
    if model.data_preprocessor.get('size') is not None:
        model.data_preprocessor.size = (crop, crop)  # else: whole images
    if network:
        _shrink_network(model, depth, base_channels)

    for loader in _loaders(cfg):
        dataset = loader.dataset
        if reference_key(dataset.data_root) is None:
            dataset.data_root = osp.join(
                data_dir, osp.basename(osp.normpath(dataset.data_root)))
        _set_pipeline_sizes(dataset.pipeline, (width, height), (crop, crop))
        loader.update(num_workers=0, persistent_workers=False)
    cfg.train_dataloader.batch_size = batch_size

    if cfg.train_cfg.type == 'EpochBasedTrainLoop':
        if max_epochs is None:
            raise ValueError('an epoch-based config needs max_epochs')
        interval = 1
        cfg.train_cfg.update(max_epochs=max_epochs, val_interval=1)
        end = max_epochs
    else:
        interval = max(1, max_iters // num_evals)
        cfg.train_cfg.update(max_iters=max_iters, val_interval=interval)
        end = max_iters
    for scheduler in cfg.param_scheduler:
        scheduler.end = end
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    cfg.default_hooks.checkpoint.interval = interval
    cfg.default_hooks.logger.interval = 10 if max_epochs else max(
        1, min(10, interval))
    cfg.default_hooks.visualization = dict(
        type='SegVisualizationHook', draw=False)
    cfg.env_cfg.cudnn_benchmark = False
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg.launcher = cfg.get('launcher', 'none')
    set_run_name(cfg, f'{osp.basename(osp.normpath(work_dir))}_'
                 f'{uuid.uuid4().hex[:8]}')
    return cfg


def set_run_name(cfg: Config, name: str) -> Config:
    """Gives a run its own experiment and visualizer name.

    MMEngine keeps one global visualizer per name (MMSeg's configs call it
    ``'visualizer'``) and logger per experiment name; a second Runner in the
    same process would otherwise log into the first one's folder.
    """
    cfg.experiment_name = name
    if cfg.get('visualizer'):
        cfg.visualizer.name = name
    return cfg


def tiny_config(name: str, data_dir: str, work_dir: str, max_iters: int = 4,
                interval: int = 2, **kwargs) -> Config:
    """A shipped stage config shrunk to a few iterations on tiny data
    (64 x 128 images, a 16-channel ResNet-18): the tests' size."""
    os.makedirs(str(work_dir), exist_ok=True)
    kwargs.setdefault('lr', 0.01)
    cfg = shrink_config(
        load_stage_config(name), data_dir, str(work_dir),
        image_size=(64, 128), crop=64, max_iters=max_iters,
        num_evals=max(1, max_iters // interval), batch_size=2,
        base_channels=16, **kwargs)
    cfg.default_hooks.logger.interval = 1
    return cfg
