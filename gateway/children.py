"""Child processes the gateway starts (embedded redis-server, reference peers) end with it.

On Linux the child asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG),
so even a gateway killed with SIGKILL leaves no orphan behind; redis-server answers
SIGTERM by flushing its append-only file. Elsewhere this is a no-op and the gateway's
own shutdown stops its children.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def spawn(args: Sequence[str], **kwargs) -> subprocess.Popen:
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(list(args), preexec_fn=preexec, **kwargs)  # noqa: PLW1509
