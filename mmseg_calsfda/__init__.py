"""Cal-SFDA for MMSegmentation 1.x.

Importing this package registers every component into MMSegmentation's
registries, so a config only needs::

    custom_imports = dict(
        imports=['mmseg_calsfda'], allow_failed_imports=False)

It also lets torch >= 2.6 load mmengine checkpoints (resume, ``load_from``).
"""
from . import datasets, engine, evaluation, models, pseudo_label  # noqa: F401
from .version import __version__

__all__ = ['__version__']
