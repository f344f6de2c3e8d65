from .tracing import two_stage_forward

__all__ = ['two_stage_forward']
