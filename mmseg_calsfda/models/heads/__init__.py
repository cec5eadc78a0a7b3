from .ece_value_net_head import ECEValueNetHead

__all__ = ['ECEValueNetHead']
