from .efficientnet_lite import EfficientNetLite
from .efficientnet_lite_checkpoint import (
    convert_efficientnet_lite,
    load_from_efficientnet_lite,
)

__all__ = [
    'EfficientNetLite', 'convert_efficientnet_lite',
    'load_from_efficientnet_lite'
]
