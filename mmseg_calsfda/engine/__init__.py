from .bn_warmup import select_bn_layers, warmup_bn_stats
from .checkpoint_compat import allow_mmengine_checkpoints
from .hooks import *  # noqa: F401,F403
from .process_group import close_process_group
from .runner import CalSFDARunner

allow_mmengine_checkpoints()

__all__ = [
    'CalSFDARunner', 'close_process_group', 'select_bn_layers',
    'warmup_bn_stats'
]
