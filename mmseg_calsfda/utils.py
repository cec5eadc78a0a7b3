"""Small helpers shared across the package (no registered components)."""
from typing import Any, Sequence

from mmengine.model import is_model_wrapper
from torch import nn


def check_choice(name: str, value: Any, choices: Sequence,
                 owner: str = '') -> None:
    """Raises ``ValueError`` naming the argument, its allowed values and
    the value given (prefixed with ``owner``) unless ``value`` is one of
    ``choices``."""
    if value not in choices:
        prefix = f'{owner}: ' if owner else ''
        raise ValueError(f'{prefix}{name} must be one of {tuple(choices)}, '
                         f'got {value!r}')


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a wrapper (DDP, FSDP, MMEngine's wrappers), or the
    model itself."""
    return model.module if is_model_wrapper(model) else model
