"""Checks that a checkpoint fits the model before its weights go in.

MMEngine loads ``load_from`` with ``strict=False``: a tensor whose shape
differs from the model's (a head trained for another class count, a layer of
another width) is only mentioned in a warning, and the layer keeps its
random initialisation -- a stage would train on a random classifier. Here
such a checkpoint is refused, naming the key and both shapes, and the keys
the checkpoint lacks (the value head a model-zoo checkpoint has never had)
are named in the log. A trained value head whose weightless settings
(``pool``, ``act_cfg``, ``align_corners``: no tensor tells them) differ
from the model's is refused too, when the checkpoint's saved config says
how it was trained.
"""
import inspect
import logging
import re
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from mmengine import Config
from mmengine.logging import print_log
from torch import nn

# What a checkpoint may lack without comment: MMEngine leaves these out
# too (BatchNorm's counter, absent from older checkpoints).
IGNORED_MISSING = ('num_batches_tracked', )
# Parts of a Cal-SFDA model that a checkpoint of an earlier stage or of
# MMSeg's model zoo does not have: their absence is expected.
NEW_MODULES = ('value_head.', )
MAX_NAMED = 30
# A value head's settings that no tensor records: a checkpoint trained with
# another value loads without a shape error and estimates something else.
WEIGHTLESS_VALUE_HEAD_SETTINGS = ('pool', 'act_cfg', 'align_corners')
# The stages whose checkpoints hold a trained value head.
VALUE_TRAINED_STAGES = ('value', 'target')


def checkpoint_state(checkpoint: Mapping,
                     revise_keys: Sequence[Tuple[str, str]] = (
                         (r'^module\.', ''), )) -> dict:
    """The state dict of a checkpoint (MMEngine's ``{'meta', 'state_dict',
    ...}`` or a bare state dict) with ``revise_keys`` applied to its keys,
    as MMEngine applies them before loading."""
    state = checkpoint.get('state_dict', checkpoint)
    for pattern, replacement in revise_keys:
        state = {re.sub(pattern, replacement, k): v for k, v in state.items()}
    return state


def mismatched_shapes(model: nn.Module, state: Mapping
                      ) -> List[Tuple[str, tuple, tuple]]:
    """``(key, checkpoint shape, model shape)`` of every tensor of the model
    (parameters and buffers, in the model's order) whose shape in ``state``
    differs."""
    found = []
    for key, tensor in model.state_dict().items():
        loaded = state.get(key)
        shape = getattr(loaded, 'shape', None)
        if shape is not None and tuple(shape) != tuple(tensor.shape):
            found.append((key, tuple(shape), tuple(tensor.shape)))
    return found


def missing_keys(model: nn.Module, state: Mapping) -> List[str]:
    """Keys of the model's state that ``state`` lacks (BatchNorm counters
    left out)."""
    return [key for key in model.state_dict()
            if key not in state and not key.endswith(IGNORED_MISSING)]


def saved_value_model(checkpoint: Mapping) -> Optional[dict]:
    """The ``model`` config a checkpoint with a trained value head was
    trained as, from the config MMEngine saves in its ``meta`` -- None when
    the checkpoint has no saved config, its model trained no value head (a
    stage-1 or model-zoo checkpoint), or the config does not parse."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    text = meta.get('cfg') if isinstance(meta, Mapping) else None
    if not isinstance(text, str):
        return None
    try:
        model = Config.fromstring(text, '.py').get('model') or {}
    except Exception:  # a config of another code base: nothing to compare
        return None
    if model.get('stage') not in VALUE_TRAINED_STAGES:
        return None
    return model


def saved_value_head(checkpoint: Mapping) -> Optional[dict]:
    """The ``model.value_head`` config a checkpoint's value head was trained
    with (:func:`saved_value_model`), or None."""
    return (saved_value_model(checkpoint) or {}).get('value_head') or None


def value_head_setting_differences(model: nn.Module, checkpoint: Mapping
                                   ) -> List[Tuple[str, Any, Any]]:
    """``(setting, the checkpoint's, the model's)`` for every
    :data:`WEIGHTLESS_VALUE_HEAD_SETTINGS` entry in which the model's value
    head differs from the one the checkpoint trained (unset settings take
    the head's defaults); empty when either has none to compare."""
    head = getattr(model, 'value_head', None)
    saved = saved_value_head(checkpoint)
    if head is None or saved is None or \
            saved.get('type') != type(head).__name__:
        return []
    defaults = inspect.signature(type(head).__init__).parameters
    found = []
    for key in WEIGHTLESS_VALUE_HEAD_SETTINGS:
        if key not in defaults or not hasattr(head, key):
            continue
        theirs = saved.get(key, defaults[key].default)
        ours = getattr(head, key)
        if theirs != ours:
            found.append((key, theirs, ours))
    return found


def _named(keys: Sequence[str]) -> str:
    more = len(keys) - MAX_NAMED
    return ', '.join(keys[:MAX_NAMED]) + (f' and {more} more'
                                          if more > 0 else '')


def check_checkpoint_fits(model: nn.Module,
                          checkpoint: Mapping,
                          name: str,
                          revise_keys: Sequence[Tuple[str, str]] = (
                              (r'^module\.', ''), ),
                          logger: Optional[object] = 'current') -> None:
    """Refuses a checkpoint whose tensors do not fit the model's shapes and
    logs the model's keys that the checkpoint lacks.

    Args:
        model (nn.Module): The model (unwrapped).
        checkpoint (Mapping): The loaded checkpoint.
        name (str): How the error and the log call the checkpoint, e.g.
            ``"load_from = 'x.pth'"``.
        revise_keys (Sequence[tuple[str, str]]): Key substitutions applied
            before loading (MMEngine's ``revise_keys``).
        logger: Where the missing keys are logged (MMEngine's
            ``print_log``). Defaults to the current logger.

    Raises:
        ValueError: Names the first key (in the model's order) whose shapes
            differ, the checkpoint's shape, the model's, and the others; or
            the first weightless value-head setting
            (:func:`value_head_setting_differences`) that differs.
    """
    state = checkpoint_state(checkpoint, revise_keys)
    mismatched = mismatched_shapes(model, state)
    if mismatched:
        key, loaded, expected = mismatched[0]
        others = [k for k, _, _ in mismatched[1:]]
        more = f' (and {len(others)} more: {_named(others)})' if others \
            else ''
        if key.startswith(NEW_MODULES):
            fix = ('model.value_head and model.value_input must be as in the '
                   'stage-2 config that trained it')
        else:
            fix = ('the checkpoint holds another network or class count '
                   "(e.g. a head trained for another dataset's classes): "
                   "load a checkpoint of this config's network, or set the "
                   "network (num_classes, channels) to the checkpoint's")
        raise ValueError(
            f'{name}: {key} has shape {loaded}, the model\'s {expected}'
            f'{more}; {fix}')
    differences = value_head_setting_differences(model, checkpoint)
    if differences:
        key, theirs, ours = differences[0]
        raise ValueError(
            f'{name}: its value head was trained with value_head.{key}='
            f'{theirs!r}, the model has {ours!r} (no weight tells it, so it '
            'would load and estimate something else); set model.value_head.'
            f'{key} as in the stage-2 config that trained it')
    missing = missing_keys(model, state)
    if missing:
        expected_new = all(k.startswith(NEW_MODULES) for k in missing)
        print_log(
            f'{name}: {len(missing)} key(s) of the model are not in the '
            f'checkpoint and keep their initialisation: {_named(missing)}',
            logger=logger,
            level=logging.INFO if expected_new else logging.WARNING)
