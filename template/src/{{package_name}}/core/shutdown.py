"""Knowing that the process was told to stop, before the server starts draining.

uvicorn stops on SIGTERM or SIGINT: it stops accepting, lets requests in flight finish, then
runs the lifespan's shutdown. Between the signal and the end of the drain, readiness must
already answer 503, so a load balancer stops routing new requests here.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopping:
    """Set when a stop signal arrived; a plain flag, safe to set from a signal handler."""

    def __init__(self) -> None:
        """Not stopping yet."""
        self.signalled = False


@contextmanager
def watch_stop_signals() -> Iterator[Stopping]:
    """Flag stop signals while the block runs; the handlers already installed still run.

    Outside the main thread (where signals cannot be handled) the flag simply stays unset.
    """
    stopping = Stopping()
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def flag(number: int, frame: FrameType | None) -> None:
        stopping.signalled = True
        handler = previous[signal.Signals(number)]
        if callable(handler):
            handler(number, frame)
        elif handler == signal.SIG_DFL:  # no server's handler: act as if we were not here
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)

    for number in STOP_SIGNALS:
        signal.signal(number, flag)
    try:
        yield stopping
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
