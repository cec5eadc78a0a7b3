from .metrics import *  # noqa: F401,F403
from .scalars import scalar_metrics  # noqa: F401
