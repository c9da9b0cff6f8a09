"""Errors a user sees as one line. Anything else escaping is a bug."""


class SideEyeError(Exception):
    """Base class: str(err) is the whole message shown to the user."""


class BinaryError(SideEyeError):
    """The target's binary cannot be analysed (not Go, unreadable, unsupported)."""


class ProcessError(SideEyeError):
    """The target process is gone, not accessible, or not a Go program."""


class CaptureError(SideEyeError):
    """The capture itself failed (probe did not load, pause failed)."""


class StoreError(SideEyeError):
    """The snapshot file cannot be read or written."""


class SpecError(SideEyeError):
    """A spec file is unreadable, not TOML, or of the wrong shape."""
