"""Small helpers shared across the package (no registered components)."""
import os.path as osp
from typing import Any, Optional, Sequence

from mmengine.model import is_model_wrapper
from torch import nn

#: This package's folder.
PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
#: Where the shipped configs are, in the order looked at: the checkout's
#: ``configs/`` (a checkout or an editable install), then the copy that a
#: wheel or ``pip install .`` carries (``setup.py`` puts it there).
CONFIGS_DIRS = (osp.join(osp.dirname(PACKAGE_DIR), 'configs'),
                osp.join(PACKAGE_DIR, '.mim', 'configs'))


def check_choice(name: str, value: Any, choices: Sequence,
                 owner: str = '') -> None:
    """Raises ``ValueError`` naming the argument, its allowed values and
    the value given (prefixed with ``owner``) unless ``value`` is one of
    ``choices``."""
    if value not in choices:
        prefix = f'{owner}: ' if owner else ''
        raise ValueError(f'{prefix}{name} must be one of {tuple(choices)}, '
                         f'got {value!r}')


def shipped_configs_dir() -> Optional[str]:
    """The shipped ``configs/`` folder (the one holding ``calsfda/`` and
    ``_base_/``): the first of :data:`CONFIGS_DIRS` that exists, or None if
    this installation has neither."""
    for path in CONFIGS_DIRS:
        if osp.isdir(osp.join(path, 'calsfda')):
            return path
    return None


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a wrapper (DDP, FSDP, MMEngine's wrappers), or the
    model itself."""
    return model.module if is_model_wrapper(model) else model
