"""Lets torch >= 2.6 load the checkpoints mmengine 0.10.7 writes.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.7
calls ``torch.load`` without the argument, and its checkpoints hold a few
non-tensor objects besides tensors (the message hub's ``HistoryBuffer`` with
numpy arrays, numpy scalars for best scores), so ``Runner(resume=True)`` and
``load_from`` fail. Rather than turning the safe loader off, this allow-lists
exactly those globals with :func:`torch.serialization.add_safe_globals`.

NumPy 2 moved ``numpy.core`` to ``numpy._core``, and a pickled array or
scalar names its rebuilding function by the module of the NumPy that wrote
it. Both spellings are allow-listed (the other major's as an alias of the
running one's function), so a checkpoint written under NumPy 1 loads under
NumPy 2 and the other way round.

``getattr`` is among them because a pickled ``HistoryBuffer`` refers to its
statistics methods as ``getattr(HistoryBuffer, 'min')``. The safe unpickler
still refuses to *call* anything that is not allow-listed, so ``getattr`` only
exposes attributes of objects it was already allowed to build.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer

#: Where NumPy 1 (``numpy.core``) and NumPy 2 (``numpy._core``) keep the
#: functions that pickled arrays and scalars name.
MULTIARRAY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def _numpy_globals() -> list:
    """The numpy callables and classes pickled with arrays and scalars;
    the multiarray functions under both NumPy majors' module names."""
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:
        from numpy.core import multiarray
    dtypes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
        np.uint16, np.uint32, np.uint64, np.float16, np.float32, np.float64)]
    functions = [(getattr(multiarray, name), f'{module}.{name}')
                 for name in ('_reconstruct', 'scalar')
                 for module in MULTIARRAY_MODULES]
    return [*functions, np.ndarray, np.dtype, *dtypes]


def mmengine_checkpoint_globals() -> list:
    """Everything besides tensors that mmengine puts in a checkpoint."""
    return [HistoryBuffer, getattr, *_numpy_globals()]


def allow_mmengine_checkpoints() -> bool:
    """Allow-lists mmengine's checkpoint contents for ``weights_only`` loads.

    Returns:
        bool: Whether anything was registered (False on torch < 2.4, whose
        ``torch.load`` does not default to ``weights_only``).
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return False
    add_safe_globals(mmengine_checkpoint_globals())
    return True
