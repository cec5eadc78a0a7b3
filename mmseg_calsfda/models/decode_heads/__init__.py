from .dlv2_head import DLV2Head

__all__ = ['DLV2Head']
