"""Small helpers shared across the package (no registered components)."""
from typing import Any, Mapping, Optional, Sequence

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


def named_dataloader(cfg: Optional[Mapping], name: str, where: str) -> dict:
    """The dataloader config that a hook argument names by a string: the
    config's top-level dict ``name`` (e.g. ``'pseudo_label_dataloader'``),
    which must hold a ``dataset``.

    A hook that reads its data by name follows every change a child config
    makes to that dataloader; a copy in the hook's own arguments would not.

    Args:
        cfg (Mapping, optional): The config (``runner.cfg``).
        name (str): The top-level key.
        where (str): The argument, for the error (``'custom_hooks[0].
            dataloader'``).

    Returns:
        dict: ``cfg[name]``.

    Raises:
        ValueError: ``cfg`` has no such dataloader; names ``where`` and
            ``name``.
    """
    loader = (cfg or {}).get(name)
    if not isinstance(loader, Mapping) or 'dataset' not in loader:
        raise ValueError(
            f'{where} = {name!r} names no dataloader of the config: give a '
            'dataloader dict, or the name of a top-level dataloader with a '
            "dataset (e.g. 'pseudo_label_dataloader')")
    return loader


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a wrapper (DDP, FSDP, MMEngine's wrappers), or the
    model itself."""
    return model.module if is_model_wrapper(model) else model
