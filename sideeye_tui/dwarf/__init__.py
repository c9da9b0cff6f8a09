"""Binary analysis: build id, build info, pclntab symbolization, runtime layouts.

The layer under everything else: it reads a Go executable and never a process.
"""

from .binary import GoBinary
from .layout import LabelsLayout, RuntimeLayout

__all__ = ["GoBinary", "LabelsLayout", "RuntimeLayout"]
