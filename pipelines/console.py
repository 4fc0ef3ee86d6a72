"""What the command-line entries share: quiet TensorFlow start-up and one-line errors."""

import os
import sys
from collections.abc import Callable

from pipelines.errors import ImgsweepError
from pipelines.stopping import Stopped, ignore_stop_signals, install_stop_handlers


def import_tensorflow_quietly(*, verbose: bool = False) -> None:
    """Import TensorFlow with its C++ logs kept off the console for the whole run, unless verbose.

    TensorFlow's own C++ logging reads TF_CPP_MIN_LOG_LEVEL once, at its first line (during
    the import), so it is set before: that quiets the lines written later, mid-training (oneDNN's
    `E0000 ... supports DT_BOOL only on platforms with AVX-512`, rendezvous warnings). The
    start-up banner (oneDNN, CUDA probing) goes through absl before it is set up and ignores
    the variable, so stderr is closed around the import; an import error still raises.
    """
    if verbose:
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # a value the user exported wins
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow

        # The first device query probes CUDA and logs its failure on machines without a GPU.
        tensorflow.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved_stderr, 2)
        os.close(devnull)
        os.close(saved_stderr)


def exit_on_config_error(arguments: list[str]) -> None:
    """Compose the config once before Hydra does, so a bad override is one line, not Hydra's
    multi-line report. Hydra's own flags (--cfg, --help, -m ...) are left to Hydra."""
    if any(argument.startswith(("-", "hydra.", "+hydra.")) for argument in arguments):
        return
    from pipelines.config import compose_config

    exit_unless_done(lambda: compose_config(arguments))


def start_tensorflow(**compute: bool) -> None:
    """Import TensorFlow quietly and apply `compute.*` before any model is built."""
    import_tensorflow_quietly(verbose=compute.get("verbose", False))
    from pipelines.train.device import configure_compute

    note = configure_compute(**compute)
    if note:
        print(f"imgsweep: note: {note}", file=sys.stderr)


def run_command(function: Callable[[], object]) -> int:
    """Exit status of a command that reports failure by raising (what it returns is unused):
    an ImgsweepError becomes one line on stderr and 2, Ctrl-C 130, SIGTERM 143."""
    try:
        function()
        return 0
    except ImgsweepError as error:
        print(f"imgsweep: error: {error}", file=sys.stderr)
        return 2
    except Stopped as stop:
        print(f"imgsweep: {stop.reason}", file=sys.stderr)
        # Recorded and on the way out: a further signal must not kill the interpreter's
        # shutdown (where Python's handlers are gone) and change the exit status.
        ignore_stop_signals()
        return stop.exit_status
    except KeyboardInterrupt:
        print("imgsweep: interrupted", file=sys.stderr)
        return 130


def exit_unless_done(function: Callable[[], object]) -> None:
    """run_command, then exit with its status unless the command went through."""
    status = run_command(function)
    if status:
        sys.exit(status)


def run_hydra_entry(hydra_main: Callable[[], None]) -> None:
    """An entry's `if __name__ == "__main__"`: a bad override is one line, else Hydra runs.

    Inside, `hydra_main` calls start_tensorflow and ends with exit_unless_done(command).
    SIGTERM and SIGINT stop it cleanly from the start (pipelines/stopping.py).
    """
    install_stop_handlers()

    def start() -> None:
        exit_on_config_error(sys.argv[1:])
        hydra_main()

    # A stop during start-up (the config check, TensorFlow's import) exits the same way.
    exit_unless_done(start)
