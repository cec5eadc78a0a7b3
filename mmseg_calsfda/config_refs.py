"""References between config keys, resolved when a Runner is built.

MMEngine copies a base config's values where a file names them
(``dataloader={{_base_.pseudo_label_dataloader}}``, ``val_dataloader =
estimation_dataloader``), when the file is read: a child config that
overrides the original key later does not reach the copies. A value written
as the string ``'${key}'`` is a reference instead: :func:`resolve_references`
replaces it by the value of the top-level ``key`` (a dotted path such as
``'${estimation_dataloader.dataset}'`` also works) *after* every base, child
and ``--cfg-options`` override has been merged, so the one key a user
overrides is what every reference reads. :class:`CalSFDARunner` resolves a
config before it builds anything, as :func:`check_config` does before it
checks one.

Example (``configs/_base_/calsfda/target_gta2folder.py``)::

    data_root = 'data/target_images/'          # the one setting
    pseudo_label_dataloader = dict(
        ..., dataset=dict(type='ImageFolderDataset', data_root='${data_root}'))
    val_dataloader = '${estimation_dataloader}'
"""
import copy
import re
from typing import Any, List, Optional

from mmengine.config import Config

REFERENCE = re.compile(r'\$\{([A-Za-z_]\w*(?:\.\w+)*)\}')


def reference_key(value: Any) -> Optional[str]:
    """The key a ``'${key}'`` string names, or None for any other value."""
    if not isinstance(value, str):
        return None
    match = REFERENCE.fullmatch(value)
    return match.group(1) if match else None


def resolve_references(cfg: Config) -> Config:
    """A copy of ``cfg`` in which every ``'${key}'`` value is replaced by
    the value of ``key`` (itself resolved).

    Args:
        cfg (Config): A loaded config.

    Returns:
        Config: The resolved copy (``cfg`` itself is left as it is).

    Raises:
        KeyError: A reference to a key the config does not have, naming
            where the reference is.
        ValueError: References that lead back to themselves.
    """
    cfg = copy.deepcopy(cfg)
    original = copy.deepcopy(cfg.to_dict())
    for key in list(cfg.keys()):
        cfg[key] = _resolve(cfg[key], key, original, [])
    return cfg


def _lookup(tree: dict, key: str, where: str) -> Any:
    node = tree
    for part in key.split('.'):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(
                f"{where} = '${{{key}}}', but the config has no key {key!r} "
                '(a reference names a top-level key, or a dotted path into '
                'one)')
        node = node[part]
    return node


def _resolve(value: Any, where: str, tree: dict, chain: List[str]) -> Any:
    """``value`` with its references replaced; ``chain`` holds the keys
    being resolved, to name a cycle."""
    key = reference_key(value)
    if key is not None:
        if key in chain:
            raise ValueError('config references form a cycle: ' +
                             ' -> '.join(chain + [key]))
        target = copy.deepcopy(_lookup(tree, key, where))
        return _resolve(target, key, tree, chain + [key])
    if isinstance(value, dict):
        for sub_key in list(value.keys()):
            value[sub_key] = _resolve(value[sub_key], f'{where}.{sub_key}',
                                      tree, chain)
        return value
    if isinstance(value, (list, tuple)):
        items = [
            _resolve(item, f'{where}[{i}]', tree, chain)
            for i, item in enumerate(value)
        ]
        return type(value)(items) if isinstance(value, list) else tuple(
            items)
    return value
