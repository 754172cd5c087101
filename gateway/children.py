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


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, below the kernel's
    ephemeral range: outgoing connections take their local ports from that range, and one
    of them could take a port picked from there before its server binds it. Not one handed
    out before by this process."""
    import random
    import socket

    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10_000, low) if low > 10_001 else 0
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        _HANDED_OUT.add(port)
        return port
    raise OSError("no free TCP port on loopback")


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def spawn(args: Sequence[str], **kwargs) -> subprocess.Popen:
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(list(args), preexec_fn=preexec, **kwargs)  # noqa: PLW1509


def wait_healthy(url: str, proc: subprocess.Popen | None = None, what: str = "service",
                 timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200; fail early if ``proc`` exits."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s")
        time.sleep(0.1)
