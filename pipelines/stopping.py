"""SIGTERM and SIGINT as a clean stop: the running epoch ends, then the work stops with a reason.

Schedulers stop jobs politely (Kubernetes, SLURM, systemd and `docker stop` send SIGTERM; a
terminal sends SIGINT) and wait a while before SIGKILL. Inside a `deferred_stop()` region (a
fit, a study's trial) the first signal only asks for the stop: training ends at its next
epoch end (pipelines.train.callbacks.StopAtSignal), after the epoch's checkpoint and metrics
are written. A second signal, or STOP_GRACE_SECONDS without an epoch end, stops at once.
Outside such a region the stop is immediate. Either way the stop is a `Stopped` exception (a
KeyboardInterrupt, so every `except KeyboardInterrupt` that records a run on Ctrl-C records
this too), and the command exits 128 + the signal's number: 143 for SIGTERM, 130 for SIGINT.
"""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

# How long a requested stop waits for an epoch end before it stops at once: under the 10 s
# that `docker stop` waits before SIGKILL, with time left to record the stop.
STOP_GRACE_SECONDS = 5.0
# A copy of the same signal this soon after the first is the same stop: `make sweep WORKERS=N`
# forwards the signal it gets to its workers, which may have had it from the terminal too.
SAME_STOP_SECONDS = 1.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """The process was asked to stop by a signal; `reason` says which and where."""

    def __init__(self, signal_number: int, where: str = ""):
        self.signal_number = signal_number
        self.signal_name = signal.Signals(signal_number).name
        self.reason = f"stopped by {self.signal_name}{where}"
        super().__init__(self.reason)

    @property
    def exit_status(self) -> int:
        return 128 + self.signal_number


class _StopState:
    """What the handler needs to know: a stop asked for or under way, open regions, the epoch
    running, the child processes to pass signals on to."""

    def __init__(self):
        self.signal_number: int | None = None
        self.requested_at = 0.0
        self.raised = False
        self.deferring = 0
        self.epoch: int | None = None
        self.timer: threading.Timer | None = None
        self.children: list[int] = []

    def where(self) -> str:
        return "" if self.epoch is None else f" during epoch {self.epoch + 1}"


_state = _StopState()
# The process that installed the handlers. A forked child (a multiprocessing pool's worker,
# e.g. cleanlab's) inherits them; Pool.terminate() ends such workers with SIGTERM, which
# must end them silently, not raise Stopped there and print its traceback.
_installed_in: int | None = None


def stop_reason(interrupt: KeyboardInterrupt) -> str:
    """The reason a run or trial ended by this interrupt gets: which signal, at which epoch."""
    return interrupt.reason if isinstance(interrupt, Stopped) else "interrupted"


def _write(line: str) -> None:
    # os.write, not print: a handler may run in the middle of another print.
    with contextlib.suppress(OSError):
        os.write(2, f"imgsweep: {line}\n".encode())


def _stop_at_once(signal_number: int) -> None:
    signal.pthread_kill(threading.main_thread().ident, signal_number)


def _raise_stop(signal_number: int, where: str) -> None:
    _cancel_grace()
    _state.raised = True
    raise Stopped(signal_number, where)


def _on_signal(signal_number: int, frame) -> None:
    for child in _state.children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal_number)
    now = time.monotonic()
    if _state.raised:
        # Stopping already: recording the stop is what makes it clean; SIGKILL skips it.
        _write("already stopping: recording where the work stopped (SIGKILL ends it at once)")
        return
    if _state.signal_number is not None:
        if now - _state.requested_at >= SAME_STOP_SECONDS:
            _raise_stop(signal_number, _state.where())
        return
    _state.signal_number, _state.requested_at = signal_number, now
    if not _state.deferring:
        _raise_stop(signal_number, "")
    _write(
        f"{signal.Signals(signal_number).name}: stopping at the end of this epoch (at most "
        f"{STOP_GRACE_SECONDS:.0f} s; send it again to stop at once)"
    )
    _state.timer = threading.Timer(STOP_GRACE_SECONDS, _stop_at_once, (signal_number,))
    _state.timer.daemon = True
    _state.timer.start()


def _cancel_grace() -> None:
    if _state.timer is not None:
        _state.timer.cancel()
        _state.timer = None


def _default_handlers_in_forked_child() -> None:
    """In a child forked from the process that installed the handlers: Python's own."""
    global _state
    if _installed_in is not None and os.getpid() != _installed_in:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _state = _StopState()


def install_stop_handlers() -> None:
    """SIGTERM and SIGINT stop this process cleanly (see the module docstring).

    SIGINT is set even when the process started with it ignored, as a shell starts background
    jobs (`make sweep &`, nohup, CI runners): Ctrl-C and `kill -INT` must still stop them.
    """
    global _installed_in
    if _installed_in is None:
        os.register_at_fork(after_in_child=_default_handlers_in_forked_child)
    _installed_in = os.getpid()
    for signal_number in STOP_SIGNALS:
        signal.signal(signal_number, _on_signal)


def ignore_stop_signals() -> None:
    """From here on SIGTERM and SIGINT do nothing: the stop is recorded, the process exits."""
    for signal_number in STOP_SIGNALS:
        signal.signal(signal_number, signal.SIG_IGN)


def raise_if_stop_requested(where: str = "") -> None:
    """At a point where stopping loses nothing: raise Stopped if a signal asked for it."""
    if _state.signal_number is not None and not _state.raised:
        _raise_stop(_state.signal_number, where)


@contextlib.contextmanager
def deferred_stop() -> Iterator[None]:
    """A region where a first signal waits for the next epoch end (or the region's end)."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    raise_if_stop_requested()


@contextlib.contextmanager
def forward_stops_to(process_ids: list[int]) -> Iterator[None]:
    """Pass every SIGTERM and SIGINT this process gets on to these processes (the workers
    `make sweep WORKERS=N` starts: a scheduler may signal the first process alone)."""
    _state.children = list(process_ids)
    try:
        yield
    finally:
        _state.children = []


def mark_epoch(epoch: int | None) -> None:
    """The epoch now running (None between epochs), for the reason of a stop at once."""
    _state.epoch = epoch
