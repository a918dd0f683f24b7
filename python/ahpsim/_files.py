"""File helpers shared by every writer of ahpsim (a leaf module: no ahpsim imports)."""

from __future__ import annotations

import os


def replace_with_umask_mode(tmp, dest) -> None:
    """``os.replace(tmp, dest)`` after giving ``tmp`` the mode a plain ``open()`` would: temporary files
    from ``tempfile.mkstemp`` are created 0600, which would leave checkpoints, histories, downloads and
    caches unreadable to the rest of a group."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dest)
