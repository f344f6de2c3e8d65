"""mmengine loops that prunedet adds (registered in mmengine's ``LOOPS``)."""
from .dcp_selection_loop import DCPSelectionLoop

__all__ = ['DCPSelectionLoop']
