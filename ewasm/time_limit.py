"""A wall-clock limit for simulations (eth_call, eth_estimateGas): `time_limit(seconds)`.

Consensus never depends on time: a mined transaction is bounded by its gas alone. A
simulation is a request, and a node answers it within a deadline (geth's
--rpc.evmtimeout, 5 s). When the limit fires, every frame running on the thread that
entered it ends out of gas at its next host call, and no new frame starts on that thread
until the limit is left; the caller reads `.expired` and answers with its own error.

Compiled code keeps its gas counter in registers between host calls, so a loop that makes
no host call runs on until its gas is spent: the simulation's gas cap bounds that time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InvalidArgument

# Threads whose limit has fired (thread ident -> the TimeLimit); read by execute.
_expired: dict[int, TimeLimit] = {}
_REPEAT_S = 0.001  # compiled code may write back a counter read before the zeroing


class TimeLimit:
    """One wall-clock limit over the frames of one thread."""

    def __init__(self, seconds: float, frames: list) -> None:
        self.seconds = seconds
        self.expired = False
        self._frames = frames  # the thread's frame stack (eei.frames()), live
        self._done = threading.Event()

    def _fire(self, ident: int) -> None:
        if self._done.wait(self.seconds):
            return
        self.expired = True
        _expired[ident] = self
        while not self._done.is_set():
            for frame in list(self._frames):
                ctx = frame.ctx
                if ctx is not None:
                    ctx.gas = 0
            self._done.wait(_REPEAT_S)


def interrupted() -> bool:
    """Whether the calling thread runs under a limit that has fired."""
    return threading.get_ident() in _expired


@contextmanager
def time_limit(seconds: float) -> Iterator[TimeLimit]:
    """Run the block under a wall-clock limit of `seconds` (see the module's doc)."""
    from . import eei  # eei imports the runtime; keep this module light to import

    if not seconds > 0:
        raise InvalidArgument(f"a time limit must be positive, not {seconds!r}")
    ident = threading.get_ident()
    limit = TimeLimit(float(seconds), eei.frames())
    timer = threading.Thread(target=limit._fire, args=(ident,), daemon=True,
                             name="ewasm-time-limit")
    timer.start()
    try:
        yield limit
    finally:
        limit._done.set()
        timer.join()
        if _expired.get(ident) is limit:
            del _expired[ident]


__all__ = ["TimeLimit", "interrupted", "time_limit"]
