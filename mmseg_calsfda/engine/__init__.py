from .checkpoint_compat import allow_mmengine_checkpoints
from .hooks import *  # noqa: F401,F403

allow_mmengine_checkpoints()
