"""Specs: which expressions to capture in which functions, and the SQL built on them.

Loading and checking a spec file (load), its plain data (model), and finding the
specs that apply to a target (discover). Applying a spec to a snapshot file is the
reports package's job.
"""

from .discover import Target, binary_targets, discover_specs, resolve_specs, spec_dirs
from .load import load_spec, parse_spec
from .model import DerivedTable, Extra, FunctionSpec, Link, LinkEnd, Spec, merge

__all__ = [
    "DerivedTable",
    "Extra",
    "FunctionSpec",
    "Link",
    "LinkEnd",
    "Spec",
    "Target",
    "binary_targets",
    "discover_specs",
    "load_spec",
    "merge",
    "parse_spec",
    "resolve_specs",
    "spec_dirs",
]
