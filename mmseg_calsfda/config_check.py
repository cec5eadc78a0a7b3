"""Checks a config before a Runner is built, naming the key at fault.

MMEngine reports an unknown ``type`` only as ``'Foo is not in the
mmseg::model registry'`` -- without saying which of a config's hundred keys
holds it -- and a missing ``load_from`` only after the model has been built.
:func:`check_config` looks at every typed entry the Runner will build and
raises a ``KeyError``/``FileNotFoundError`` that names the key path.
"""
import importlib.util
import inspect
import os
import os.path as osp
from typing import Any, Iterator, Optional, Tuple

from mmengine.config import Config
from mmseg.registry import (
    DATASETS,
    EVALUATOR,
    HOOKS,
    LOOPS,
    METRICS,
    MODELS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    TRANSFORMS,
)

from .config_refs import resolve_references
from .models.segmentors import CalSFDASegmentor, value_head_reads_backbone
from .models.segmentors.head_losses import check_head

# Keys of a model dict whose values are themselves models.
_MODEL_KEYS = ('backbone', 'neck', 'decode_head', 'auxiliary_head',
               'value_head', 'data_preprocessor', 'loss_decode', 'module',
               'calibration_loss', 'decode_losses', 'auxiliary_losses')


def _typed(node, path: str) -> Iterator[Tuple[str, dict]]:
    """Yields ``(path, dict)`` for a dict or each dict of a list."""
    if isinstance(node, dict) and 'type' in node:
        yield path, node
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _typed(item, f'{path}[{i}]')


def _model_entries(node, path: str) -> Iterator[Tuple[str, dict]]:
    for sub_path, sub in _typed(node, path):
        yield sub_path, sub
        for key in _MODEL_KEYS:
            if key in sub:
                yield from _model_entries(sub[key], f'{sub_path}.{key}')


def _hooks(cfg: Config) -> Iterator[Tuple[str, dict]]:
    """``(key path, hook config)`` of every custom and default hook."""
    yield from _typed(cfg.get('custom_hooks', []), 'custom_hooks')
    for key, hook in (cfg.get('default_hooks') or {}).items():
        yield from _typed(hook, f'default_hooks.{key}')


# Arguments of hooks that take a dataloader (a dict, or a built DataLoader;
# in a config a '${key}' reference reads a top-level one).
HOOK_DATALOADER_ARGS = (
    ('SelfTrainingHook', 'dataloader'),
    ('SelfTrainingHook', 'bn_warmup_dataloader'),
    ('BNWarmupHook', 'dataloader'),
    ('ECECheckpointHook', 'report_dataloader'),
)


def _dataset_entries(loader: Any,
                     path: str) -> Iterator[Tuple[str, dict, object]]:
    """The dataset of a dataloader config and its pipeline's transforms."""
    if not isinstance(loader, dict):
        return
    for sub_path, node in _typed(loader.get('dataset'), f'{path}.dataset'):
        yield sub_path, node, DATASETS
        yield from ((p, n, TRANSFORMS) for p, n in _typed(
            node.get('pipeline', []), f'{sub_path}.pipeline'))


def _hook_dataloaders(cfg: Config) -> Iterator[Tuple[str, Any]]:
    """``(key path, value)`` of every dataloader argument a hook of
    :data:`HOOK_DATALOADER_ARGS` is given."""
    for path, hook in _hooks(cfg):
        for hook_type, arg in HOOK_DATALOADER_ARGS:
            if arg in hook and _is_hook(hook['type'], hook_type):
                yield f'{path}.{arg}', hook[arg]


def _entries(cfg: Config) -> Iterator[Tuple[str, dict, object]]:
    """Yields ``(key path, typed dict, registry)`` for what the Runner
    builds."""
    for path, node in _model_entries(cfg.get('model'), 'model'):
        yield path, node, MODELS
    for name in ('train', 'val', 'test'):
        yield from _dataset_entries(cfg.get(f'{name}_dataloader'),
                                    f'{name}_dataloader')
        for path, node in _typed(cfg.get(f'{name}_cfg'), f'{name}_cfg'):
            yield path, node, LOOPS
    for name in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(name)
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            evaluator = evaluator['metrics']
        for path, node in _typed(evaluator, name):
            yield path, node, (EVALUATOR if node['type'].endswith('Evaluator')
                               else METRICS)
    for path, node in _hooks(cfg):
        yield path, node, HOOKS
    # the datasets of the other top-level dataloaders (pseudo-label pass,
    # estimation, report) and of the hooks' dataloaders: a misspelt type
    # is named by the key a user wrote it in, before training
    for name in cfg.keys():
        if name.endswith('_dataloader') and name not in (
                'train_dataloader', 'val_dataloader', 'test_dataloader'):
            yield from _dataset_entries(cfg[name], name)
    for path, loader in _hook_dataloaders(cfg):
        yield from _dataset_entries(loader, path)
    for path, node in _typed(cfg.get('param_scheduler'), 'param_scheduler'):
        yield path, node, PARAM_SCHEDULERS
    wrapper = cfg.get('optim_wrapper') or {}
    for path, node in _typed(wrapper, 'optim_wrapper'):
        yield path, node, OPTIM_WRAPPERS
        for p, n in _typed(node.get('optimizer'), f'{path}.optimizer'):
            yield p, n, OPTIMIZERS


# Packages a scoped type (``'mmpretrain.ConvNeXt'``) may need, by scope.
OPTIONAL_PACKAGES = dict(mmdet='mmdet', mmpretrain='mmpretrain',
                         mmcls='mmcls')


def _check_optional_package(path: str, type_name: str) -> None:
    """Raises ``ModuleNotFoundError`` if a scoped type's package is not
    installed."""
    scope = type_name.split('.')[0] if '.' in type_name else None
    package = OPTIONAL_PACKAGES.get(scope)
    if package and importlib.util.find_spec(package) is None:
        raise ModuleNotFoundError(
            f'{path}.type = {type_name!r} comes from {package}, which is not '
            f'installed: pip install {package} (with mim: mim install '
            f'{package}), or choose a network without it')


def check_config(cfg: Config) -> None:
    """Raises if a ``type`` is not registered or ``load_from`` is missing,
    checks the model as :func:`check_model` does and the hooks' dataloaders
    as :func:`check_hook_dataloaders` does, on the config with its
    ``'${key}'`` references resolved (:func:`resolve_references`).

    Args:
        cfg (Config): A loaded config (custom imports already done).

    Raises:
        KeyError: Names the key path, the type and the registry; or a
            reference to a missing key.
        ModuleNotFoundError: Names the key path and the optional package.
        FileNotFoundError: Names ``load_from`` and the path.
        ValueError: See :func:`check_model` and
            :func:`check_hook_dataloaders`.
    """
    cfg = resolve_references(cfg)
    for path, node, registry in _entries(cfg):
        type_name = node['type']
        if isinstance(type_name, str):
            _check_optional_package(path, type_name)
        if isinstance(type_name, str) and registry.get(type_name) is None:
            raise KeyError(
                f'{path}.type = {type_name!r} is not registered in the '
                f'{registry.scope}::{registry.name} registry (misspelt, or '
                f'its module not imported by custom_imports?)')
    check_model(cfg)
    check_hook_dataloaders(cfg)
    load_from = cfg.get('load_from')
    if load_from and '://' not in load_from and not osp.isfile(load_from):
        raise FileNotFoundError(
            f'load_from = {load_from!r}: no such checkpoint file')


# Where a stage-3 recipe hands a hook (or the Runner) a dataloader that is
# meant to be one of its top-level dataloader keys: (hook type, argument,
# top-level key). A copy of the key made when a base config was read does
# not follow a child config's override of the key.
HOOK_DATALOADERS = (
    ('SelfTrainingHook', 'dataloader', 'pseudo_label_dataloader'),
    ('BNWarmupHook', 'dataloader', 'estimation_dataloader'),
    ('ECECheckpointHook', 'report_dataloader', 'report_dataloader'),
)


def _image_folder(loader: Any) -> Optional[str]:
    """The folder a dataloader config reads images from (``data_root``
    joined with ``data_prefix.img_path``, through dataset wrappers), or
    None when it does not say."""
    dataset = loader.get('dataset') if isinstance(loader, dict) else None
    while isinstance(dataset, dict) and isinstance(
            dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    if not isinstance(dataset, dict):
        return None
    root = dataset.get('data_root') or ''
    prefix = (dataset.get('data_prefix') or {}).get('img_path') or ''
    if not isinstance(root, str) or not isinstance(prefix, str) or not (
            root or prefix):
        return None
    return osp.normpath(osp.join(root, prefix))


def _is_hook(type_name: Any, base: str) -> bool:
    hook_cls = HOOKS.get(type_name) if isinstance(type_name, str) else \
        type_name
    base_cls = HOOKS.get(base)
    return (inspect.isclass(hook_cls) and base_cls is not None
            and issubclass(hook_cls, base_cls))


def check_hook_dataloaders(cfg: Config) -> None:
    """Every dataloader that stands for a top-level dataloader key must read
    the images that key reads.

    The stage-3 recipes give :class:`SelfTrainingHook` the
    ``pseudo_label_dataloader``, :class:`BNWarmupHook` and the validation
    the ``estimation_dataloader``, :class:`ECECheckpointHook` the
    ``report_dataloader``. Where a config holds a *copy* of the key
    (``{{_base_.pseudo_label_dataloader}}``), a child config that overrides
    only the key would leave the copy reading the old folder; this refuses
    such a config. A reference (``'${pseudo_label_dataloader}'``) always
    agrees.

    A hook's dataloader is a dict (or a reference that resolves to one),
    never a bare key name: ``dataloader='pseudo_label_dataloader'`` is
    refused, naming the reference to write instead.

    Args:
        cfg (Config): A loaded config, references resolved.

    Raises:
        ValueError: Names both keys and both folders; or the hook argument
            given a string.
    """
    for path, loader in _hook_dataloaders(cfg):
        if isinstance(loader, str):
            raise ValueError(
                f'{path} = {loader!r} is a string: a hook takes a '
                'dataloader dict; to read a top-level dataloader, write a '
                f"reference to it: '${{{loader}}}' (mmseg_calsfda."
                'config_refs)')
    pairs = [('val_dataloader', cfg.get('val_dataloader'),
              'estimation_dataloader')]
    for path, hook in _hooks(cfg):
        for hook_type, arg, key in HOOK_DATALOADERS:
            if arg in hook and _is_hook(hook['type'], hook_type):
                pairs.append((f'{path}.{arg}', hook[arg], key))
    for path, loader, key in pairs:
        used, meant = _image_folder(loader), _image_folder(cfg.get(key))
        if used is not None and meant is not None and used != meant:
            raise ValueError(
                f'{path} reads images from {used!r}, but {key} from '
                f'{meant!r}: {path} holds a copy of {key} made when a base '
                f'config was read, which an override of {key} does not '
                f"reach. Override both, or let {path} name the key: "
                f"'${{{key}}}' (docs/your_data.md)")


def _accepted_keys(cls) -> set:
    """Keyword arguments of ``cls`` and its bases' ``__init__``."""
    keys = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is not None:
            keys |= set(inspect.signature(init).parameters) - {
                'self', 'args', 'kwargs'}
    return keys


def _is_recipe_model(model_type: Any, recipe_type: Any) -> bool:
    """``model_type`` is the recipe's segmentor, or a registered subclass of
    it (an extension that overrides its documented methods)."""
    if model_type == recipe_type:
        return True
    model_cls, recipe_cls = (MODELS.get(t) if isinstance(t, str) else t
                             for t in (model_type, recipe_type))
    return (inspect.isclass(model_cls) and inspect.isclass(recipe_cls)
            and issubclass(model_cls, recipe_cls))


def check_model(cfg: Config) -> None:
    """Checks that a Cal-SFDA config's model can be wrapped.

    * a config that inherits a stage recipe (``calsfda_model``) must use it
      (``model = _base_.calsfda_model``; a registered subclass of its
      segmentor may replace the type);
    * the network must be an encoder-decoder (or a cascade of them): keys
      of other segmentors (SAN's or VPD's multimodal ones) are refused;
    * every decode head must output per-pixel class logits (MaskFormer and
      Mask2Former do not);
    * every head's ``num_classes`` (decode, auxiliary, a cascade's stages,
      nested heads such as K-Net's) must be the dataset's class count;
    * every loss that leaves padding out (``padding_label``) must name the
      label ``data_preprocessor.seg_pad_val`` pads with;
    * a value head that reads the backbone must have its ``in_channels``.

    Args:
        cfg (Config): A loaded config.

    Raises:
        ValueError: Names the key at fault and the fix.
    """
    model = cfg.get('model') or {}
    if 'module' in model:  # a test-time wrapper (tools/test.py --tta)
        model = model['module']
    recipe = cfg.get('calsfda_model')
    if recipe is not None and not _is_recipe_model(model.get('type'),
                                                   recipe.get('type')):
        raise ValueError(
            f"model.type = {model.get('type')!r}, but this config inherits a "
            f"Cal-SFDA stage recipe whose model is {recipe.get('type')!r}: "
            'merge it into the network with  model = _base_.calsfda_model  '
            '(docs/any_network.md)')
    model_cls = MODELS.get(model.get('type', ''))
    if not (inspect.isclass(model_cls)
            and issubclass(model_cls, CalSFDASegmentor)):
        return
    unknown = sorted(k for k in set(model) - _accepted_keys(model_cls)
                     if k != 'type' and not k.startswith('_'))
    if unknown:
        raise ValueError(
            f'model.{unknown[0]}: {model.type} (an EncoderDecoder, or a '
            f'cascade with num_stages) takes no {unknown}. The network '
            'comes from a segmentor Cal-SFDA cannot wrap (e.g. SAN/VPD\'s '
            'MultimodalEncoderDecoder, DepthEstimator); choose an '
            'EncoderDecoder or CascadeEncoderDecoder network')
    heads = model.get('decode_head')
    for i, head in enumerate(heads if isinstance(heads, list) else [heads]):
        if not isinstance(head, dict):
            raise ValueError('model.decode_head: a Cal-SFDA model needs a '
                             f'decode head config, got {head!r}')
        check_head(head, 'model.decode_head' +
                   (f'[{i}]' if isinstance(heads, list) else ''))
    _check_num_classes(cfg, model)
    _check_padding_label(model)
    _check_value_head_channels(model)


# Heads whose classes are not the dataset's: STDC's detail head predicts
# boundary / not boundary (num_classes=2).
OWN_CLASS_HEADS = ('STDCHead', )


def _head_class_counts(node: Any, path: str) -> Iterator[Tuple[str, Any]]:
    """Yields ``(key path, value)`` of every ``num_classes`` in a head
    config (a dict, or a list of them) and in the configs nested in it
    (K-Net's ``kernel_generate_head`` and ``kernel_update_head`` list),
    except in :data:`OWN_CLASS_HEADS`."""
    if isinstance(node, (list, tuple)):
        items = ((f'{path}[{i}]', item) for i, item in enumerate(node))
    elif isinstance(node, dict):
        if node.get('type') in OWN_CLASS_HEADS:
            return
        if 'num_classes' in node:
            yield f'{path}.num_classes', node['num_classes']
        items = ((f'{path}.{key}', value) for key, value in node.items()
                 if key != 'num_classes')
    else:
        return
    for sub_path, item in items:
        yield from _head_class_counts(item, sub_path)


def _dataset_classes(dataset: Any,
                     path: str) -> Optional[Tuple[int, str]]:
    """``(class count, where it comes from)`` of a dataset config: its
    ``metainfo.classes``, the wrapped dataset's (``RepeatDataset``,
    ``MultiImageMixDataset``; a ``ConcatDataset``'s first), or its type's
    ``METAINFO``; None when none of them names the classes."""
    if not isinstance(dataset, dict):
        return None
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is not None:
        return len(classes), f'{path}.metainfo.classes'
    if isinstance(dataset.get('dataset'), dict):
        return _dataset_classes(dataset['dataset'], f'{path}.dataset')
    if isinstance(dataset.get('datasets'), (list, tuple)) and \
            dataset['datasets']:
        return _dataset_classes(dataset['datasets'][0], f'{path}.datasets[0]')
    dataset_type = dataset.get('type')
    dataset_cls = (DATASETS.get(dataset_type) if isinstance(
        dataset_type, str) else dataset_type)
    classes = (getattr(dataset_cls, 'METAINFO', None) or {}).get('classes')
    if classes is None:
        return None
    return len(classes), f'{path}.type = {dataset_type!r}'


def _check_num_classes(cfg: Config, model: dict) -> None:
    """Every head's ``num_classes`` must be the class count of the dataset
    the model trains on (``train_dataloader``'s, else ``test_dataloader``'s);
    auxiliary heads that ``auxiliary_losses='off'`` leaves unbuilt are not
    looked at."""
    found = None
    for name in ('train_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if isinstance(loader, dict) and loader.get('dataset'):
            found = _dataset_classes(loader['dataset'], f'{name}.dataset')
            break
    if found is None:
        return
    count, source = found
    heads = [('model.decode_head', model.get('decode_head'))]
    if model.get('auxiliary_losses', 'keep') != 'off':
        heads.append(('model.auxiliary_head', model.get('auxiliary_head')))
    for path, head in heads:
        for key, num_classes in _head_class_counts(head, path):
            if num_classes != count:
                raise ValueError(
                    f'{key} = {num_classes!r}, but the dataset has {count} '
                    f'classes ({source}): set it to {count} (a network '
                    "config from another dataset's model zoo keeps that "
                    "dataset's class count in every head)")


def _default(cls, name: str, fallback: Any = None) -> Any:
    """The default of keyword argument ``name`` of ``cls``'s (or a base's)
    ``__init__``, or ``fallback``."""
    for klass in getattr(cls, '__mro__', ()):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not param.empty:
            return param.default
    return fallback


def _check_padding_label(model: dict) -> None:
    """The label the data preprocessor pads label maps with
    (``seg_pad_val``) must be the ``padding_label`` of every loss that
    leaves padding out (defaults to :data:`PADDING_LABEL`), or padded pixels
    are trained on as unselected image pixels."""
    preprocessor = model.get('data_preprocessor')
    if not isinstance(preprocessor, dict):
        return
    pad = preprocessor.get('seg_pad_val', _default(
        MODELS.get(preprocessor.get('type', '')), 'seg_pad_val'))
    if pad is None:
        return
    for path, node in _model_entries(model, 'model'):
        loss_cls = MODELS.get(node['type']) if isinstance(
            node['type'], str) else node['type']
        if 'padding_label' not in _accepted_keys_of(loss_cls):
            continue
        given = 'padding_label' in node
        label = node['padding_label'] if given else _default(
            loss_cls, 'padding_label')
        if label is not None and label != pad:
            origin = '' if given else (
                ' (its default: PADDING_LABEL in '
                'mmseg_calsfda/models/losses/padding.py)')
            raise ValueError(
                f'{path}.padding_label = {label!r}{origin}, but '
                f'model.data_preprocessor.seg_pad_val = {pad!r}: padded '
                'pixels would be trained on as image. Pad with the label '
                f'the losses leave out (seg_pad_val={label!r}), or set '
                f'padding_label={pad!r}')


def _accepted_keys_of(cls) -> set:
    """:func:`_accepted_keys` of a class; nothing for anything else."""
    return _accepted_keys(cls) if inspect.isclass(cls) else set()


def _check_value_head_channels(model: dict) -> None:
    """With ``value_input='backbone'``, the value head's ``in_channels``
    must be those of the feature map it reads (builds the backbone and
    neck once, without pretrained weights, on a 64 x 64 input)."""
    if not value_head_reads_backbone(model):
        return
    import torch
    head = model['value_head']
    in_index = head.get('in_index', -1)
    in_channels = head.get('in_channels', 2048)
    network = [MODELS.build(dict(model['backbone'], init_cfg=None))]
    if model.get('neck'):
        network.append(MODELS.build(model['neck']))
    feats = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        for module in network:
            module.eval()  # some backbones' train() returns None
            feats = module(feats)
    found = feats[in_index].shape[1]
    if found != in_channels:
        raise ValueError(
            f'model.value_head.in_channels = {in_channels}, but the '
            f'feature map it reads (model.value_head.in_index = {in_index}) '
            f'has {found} channels: set in_channels={found}, or read the '
            "class probabilities with model.value_input='probs'")


def check_launcher_devices(launcher: str) -> None:
    """Raises ``RuntimeError`` if torchrun started more processes on this
    node than there are visible GPUs.

    MMEngine then fails deep in its logger with an ``IndexError``. CPU-only
    machines (no CUDA) train with gloo and are not affected.

    Args:
        launcher (str): The ``--launcher`` of tools/train.py or test.py.
    """
    import torch
    if launcher != 'pytorch' or not torch.cuda.is_available():
        return
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    num_gpus = torch.cuda.device_count()
    if local_rank >= num_gpus:
        visible = os.environ.get('CUDA_VISIBLE_DEVICES')
        raise RuntimeError(
            f'process LOCAL_RANK={local_rank} has no GPU: {num_gpus} visible '
            f'on this node (CUDA_VISIBLE_DEVICES={visible!r}). Start at most '
            f'{num_gpus} process(es) per node (tools/dist_train.sh CONFIG '
            f'{num_gpus}), or set CUDA_VISIBLE_DEVICES= to train on CPUs.')


def find_sync_bn(node, path: str = 'model') -> Optional[str]:
    """The key path of the first ``norm_cfg`` of type ``SyncBN`` in a model
    config, or None."""
    if isinstance(node, dict):
        norm = node.get('norm_cfg')
        if isinstance(norm, dict) and norm.get('type') == 'SyncBN':
            return f'{path}.norm_cfg'
        children = ((f'{path}.{key}', value) for key, value in node.items())
    elif isinstance(node, (list, tuple)):
        children = ((f'{path}[{i}]', value) for i, value in enumerate(node))
    else:
        return None
    for sub_path, value in children:
        found = find_sync_bn(value, sub_path)
        if found:
            return found
    return None
