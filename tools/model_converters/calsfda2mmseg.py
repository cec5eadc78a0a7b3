"""Export a Cal-SFDA model as a plain MMSegmentation model.

    python tools/model_converters/calsfda2mmseg.py CONFIG CHECKPOINT OUT_DIR \\
        [--name NAME]

Writes ``OUT_DIR/NAME.py`` and ``OUT_DIR/NAME.pth`` (NAME: the config's
name), which MMSeg loads as any of its models (``init_model``,
``inference_model``, ``MMSegInferencer``, its ``tools/test.py``):

* the checkpoint holds ``state_dict`` and ``meta`` only (the classes and
  palette, where the model came from): no value head, no loss buffers, no
  optimizer or message hub, so ``torch.load(weights_only=True)`` reads it
  without any allow-list;
* the config is an ``EncoderDecoder`` (``CascadeEncoderDecoder`` for a
  cascade) with the network's own heads and losses, the test pipeline,
  data and MMSeg's metrics (Cal-SFDA's dataset types become the MMSeg ones
  they extend; the ECE metrics, which need the plugin, are left out), and
  MMSeg's default runtime.

A network built from MMSeg's modules (e.g. DeepLabV3+ on a ResNet) needs
nothing else. One that uses the plugin's own modules (``DLV2Head``,
``EfficientNetLite``) keeps them, and the config then says
``custom_imports = dict(imports=['mmseg_calsfda'])``: the plugin must be
installed where it is loaded.
"""
import argparse
import inspect
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

import torch
from mmengine.config import Config, ConfigDict

from mmseg_calsfda.apis import inference_pipeline
from mmseg_calsfda.cli import (
    BUILD_ERRORS,
    config_errors,
    fail,
    load_config,
    quiet_known_warnings,
)

PLUGIN = 'mmseg_calsfda'
#: The network's own keys of a Cal-SFDA model config; the others are
#: :class:`CalSFDASegmentor`'s.
NETWORK_KEYS = ('num_stages', )


def parse_args():
    parser = argparse.ArgumentParser(
        description='Write a Cal-SFDA model as a plain MMSeg config and '
        'checkpoint (no value head, loadable with weights_only=True).')
    parser.add_argument('config', help='the Cal-SFDA config of the model')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('out_dir', help='where NAME.py and NAME.pth go')
    parser.add_argument('--name', help='file name of the outputs, without '
                        'extension (default: the config\'s name)')
    return parser.parse_args()


def is_plugin_class(obj: Any) -> bool:
    """Whether ``obj`` is a class this plugin defines."""
    return inspect.isclass(obj) and obj.__module__.split('.')[0] == PLUGIN


def calsfda_keys() -> List[str]:
    """The arguments :class:`CalSFDASegmentor` adds to MMSeg's
    ``EncoderDecoder`` (value head, stage, losses placed in the heads)."""
    from mmseg_calsfda.models.segmentors import CalSFDASegmentor
    params = inspect.signature(CalSFDASegmentor.__init__).parameters
    return [
        name for name, p in params.items() if name != 'self'
        and p.kind is not p.VAR_KEYWORD and name not in NETWORK_KEYS
    ]


def _drop_pretrained(node: Any) -> None:
    """Removes ``init_cfg=dict(type='Pretrained', ...)`` everywhere: every
    weight comes from the checkpoint."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            _drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _drop_pretrained(value)


def plain_model_cfg(model: ConfigDict) -> ConfigDict:
    """The MMSeg network of a Cal-SFDA model config: an ``EncoderDecoder``
    (with ``num_stages``: ``CascadeEncoderDecoder``) without the value head
    and the stage's loss settings, the heads with the network's own
    losses. An auxiliary head the stage did not build
    (``auxiliary_losses='off'``) is left out.

    Args:
        model (ConfigDict): ``cfg.model`` of a Cal-SFDA config.

    Returns:
        ConfigDict: The plain model config (a copy).
    """
    from mmseg.registry import MODELS

    from mmseg_calsfda.models.segmentors import CalSFDASegmentor
    cls = MODELS.get(model.get('type', ''))
    if not (inspect.isclass(cls) and issubclass(cls, CalSFDASegmentor)):
        raise ValueError(f'model.type = {model.get("type")!r} is not a '
                         'CalSFDASegmentor: nothing to export')
    plain = ConfigDict(model.to_dict())
    if plain.get('auxiliary_losses', 'keep') == 'off':
        plain.pop('auxiliary_head', None)
    for key in calsfda_keys():
        plain.pop(key, None)
    plain.type = 'CascadeEncoderDecoder' if plain.get(
        'num_stages') else 'EncoderDecoder'
    plain.pretrained = None
    _drop_pretrained(plain)
    return plain


def plugin_types(node: Any, registry=None) -> List[str]:
    """The ``type``s in a config node that name this plugin's classes
    (in ``registry``, MMSeg's models by default), sorted."""
    from mmseg.registry import MODELS
    registry = registry or MODELS
    found = set()
    if isinstance(node, dict):
        kind = node.get('type')
        obj = registry.get(kind) if isinstance(kind, str) else kind
        if is_plugin_class(obj):
            found.add(obj.__name__)
        for value in node.values():
            found.update(plugin_types(value, registry))
    elif isinstance(node, (list, tuple)):
        for value in node:
            found.update(plugin_types(value, registry))
    return sorted(found)


def mmseg_dataset_cfg(dataset: ConfigDict) -> ConfigDict:
    """A test dataset config with MMSeg's type: a plugin dataset becomes
    the MMSeg class it extends, with the classes, palette and file suffixes
    the plugin's class gives (its checks of the data are left behind)."""
    from mmseg.registry import DATASETS
    dataset = ConfigDict(dataset.to_dict())
    cls = DATASETS.get(dataset.get('type', ''))
    if not is_plugin_class(cls):
        return dataset
    base = next(c for c in cls.__mro__[1:]
                if not is_plugin_class(c) and DATASETS.get(c.__name__) is c)
    base_defaults = _defaults(base)
    for name, default in _defaults(cls).items():
        if name not in dataset and base_defaults.get(name) != default:
            dataset[name] = default
    if cls.METAINFO is not base.METAINFO and 'metainfo' not in dataset:
        dataset.metainfo = dict(
            classes=list(cls.METAINFO['classes']),
            palette=[list(c) for c in cls.METAINFO['palette']])
    dataset.type = base.__name__
    return dataset


def _defaults(cls) -> Dict[str, Any]:
    """The default values of ``cls.__init__``'s arguments."""
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items()
            if p.default is not p.empty}


def _mmseg_metrics(evaluator: Any) -> Tuple[list, List[str]]:
    """MMSeg's metrics of a test evaluator, and the plugin's left out."""
    from mmseg.registry import METRICS
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator
    ]
    kept, dropped = [], []
    for metric in metrics:
        if is_plugin_class(METRICS.get(metric.get('type', ''))):
            dropped.append(metric['type'])
        else:
            kept.append(metric)
    return kept, dropped


def plain_config(cfg: Config) -> Tuple[Config, List[str], List[str]]:
    """The exported config: MMSeg's default runtime, the plain model, the
    test pipeline, data and MMSeg's metrics; ``custom_imports`` of the
    plugin when the model uses its modules.

    Returns:
        tuple: ``(config, plugin model types, metrics left out)``.
    """
    from mmengine.hub import get_config
    model = plain_model_cfg(cfg.model)
    needs_plugin = plugin_types(model)
    out = get_config('mmseg::_base_/default_runtime.py')
    out.merge_from_dict(dict(default_scope='mmseg', model=model))
    if needs_plugin:
        out.custom_imports = dict(
            imports=[PLUGIN], allow_failed_imports=False)
    dropped: List[str] = []
    loader = cfg.get('test_dataloader')
    if loader:
        loader = ConfigDict(loader.to_dict())
        loader.dataset = mmseg_dataset_cfg(loader.dataset)
        out.test_pipeline = loader.dataset.pipeline
        out.test_dataloader = loader
        out.test_cfg = dict(type='TestLoop')
        metrics, dropped = _mmseg_metrics(cfg.get('test_evaluator') or [])
        if metrics:
            out.test_evaluator = metrics
    else:  # no labelled test data (e.g. the folder target): inference only
        out.test_pipeline = inference_pipeline(cfg)
    if cfg.get('tta_pipeline'):
        out.tta_pipeline = cfg.tta_pipeline
    return out, needs_plugin, dropped


def _plain_value(value: Any) -> Any:
    """``value`` with Python types only (numpy scalars and arrays become
    numbers and lists), as ``weights_only`` loading accepts."""
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if hasattr(value, 'tolist'):  # numpy
        return value.tolist()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def plain_checkpoint(ckpt: dict, model: torch.nn.Module, source: str
                     ) -> Tuple[dict, Dict[str, int]]:
    """The plain model's weights out of a Cal-SFDA checkpoint.

    Args:
        ckpt (dict): The loaded checkpoint (or a bare state dict).
        model (nn.Module): The plain model (its keys and shapes are kept).
        source (str): The checkpoint file, recorded in ``meta``.

    Returns:
        tuple: The checkpoint (``state_dict``, ``meta``) and the number of
        tensors left out per module prefix (``value_head``,
        ``decode_head.loss_decode``, ...).
    """
    state = ckpt.get('state_dict', ckpt)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise KeyError(f'the checkpoint has no {missing[0]!r} (and '
                       f'{len(missing) - 1} more of the network\'s tensors):'
                       ' is it the checkpoint of this config?')
    wrong = [k for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise ValueError(f'{wrong[0]!r} has shape '
                         f'{tuple(state[wrong[0]].shape)} in the checkpoint,'
                         f' {tuple(expected[wrong[0]].shape)} in the config')
    left_out: Dict[str, int] = {}
    for key in state:
        if key not in expected:
            prefix = '.'.join(key.split('.')[:2 if 'loss' in key else 1])
            left_out[prefix] = left_out.get(prefix, 0) + 1
    old_meta = ckpt.get('meta') or {}
    meta = dict(calsfda=dict(checkpoint=osp.basename(source)))
    for key in ('epoch', 'iter'):
        if key in old_meta:
            meta['calsfda'][key] = _plain_value(old_meta[key])
    dataset_meta = old_meta.get('dataset_meta') or {}
    if dataset_meta.get('classes'):
        meta['dataset_meta'] = _plain_value(
            {k: dataset_meta[k] for k in ('classes', 'palette')
             if k in dataset_meta})
    weights = OrderedDict(
        (k, state[k].detach().cpu().clone()) for k in expected)
    return dict(state_dict=weights, meta=meta), left_out


def main():
    quiet_known_warnings()
    args = parse_args()
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401  registers the plugin
    register_all_modules(init_default_scope=False)
    init_default_scope('mmseg')
    cfg = load_config(args.config)
    if not osp.isfile(args.checkpoint):
        fail(f'checkpoint {args.checkpoint!r} does not exist')
    with config_errors(args.config, BUILD_ERRORS):
        out_cfg, needs_plugin, dropped = plain_config(cfg)
        model = MODELS.build(out_cfg.model)
    ckpt = _load_checkpoint(args.checkpoint, map_location='cpu',
                            logger='silent')
    try:
        out_ckpt, left_out = plain_checkpoint(ckpt, model, args.checkpoint)
    except (KeyError, ValueError) as e:
        fail(f'{args.checkpoint}: {e.args[0]}')

    name = args.name or osp.splitext(osp.basename(args.config))[0]
    os.makedirs(args.out_dir, exist_ok=True)
    cfg_path = osp.join(args.out_dir, name + '.py')
    ckpt_path = osp.join(args.out_dir, name + '.pth')
    out_cfg.dump(cfg_path)
    torch.save(out_ckpt, ckpt_path + '.tmp')
    os.replace(ckpt_path + '.tmp', ckpt_path)

    needs = (f'needs the plugin for {", ".join(needs_plugin)} '
             '(custom_imports)' if needs_plugin else 'MMSeg types only')
    print(f'wrote {cfg_path}: {out_cfg.model.type}, {needs}'
          + (f'; left out the metrics {", ".join(dropped)}'
             if dropped else ''))
    kept = len(out_ckpt['state_dict'])
    print(f'wrote {ckpt_path}: {kept} tensors, state_dict + meta; left out '
          + (', '.join(f'{k}.* ({n})' for k, n in sorted(left_out.items()))
             or 'nothing'))


if __name__ == '__main__':
    main()
