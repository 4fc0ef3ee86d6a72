"""GPU settings that must be made before TensorFlow touches the GPU or any model is built."""

import logging

import keras
import tensorflow as tf
from absl import logging as absl_logging


def configure_compute(
    *,
    gpu_memory_growth: bool,
    mixed_precision: bool,
    deterministic: bool = False,
    verbose: bool = False,
) -> str | None:
    """Memory growth on every GPU and the mixed_float16 policy when asked and a GPU is there;
    deterministic ops when asked; TensorFlow's Python-side warnings only when verbose.

    Returns a one-line note when a setting could not be applied, else None. Mixed precision
    is left off on CPU, where float16 arithmetic is emulated and slower than float32.
    """
    if not verbose:
        # The C++ side is quieted before the import (pipelines.console); these are its Python
        # loggers, which Keras and TensorFlow also write notes to.
        tf.get_logger().setLevel(logging.ERROR)
        absl_logging.set_verbosity(absl_logging.ERROR)
    if deterministic:
        # Seeds alone leave the order of multi-threaded float sums to chance, and with it the
        # last digits of every weight: a study run twice would drift apart.
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    note = None
    for gpu in gpus if gpu_memory_growth else ():
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU was initialised already (a second call in one process)
            note = "compute.gpu_memory_growth: the GPU was already in use; setting left as is"
    if mixed_precision and gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    elif mixed_precision:
        note = "compute.mixed_precision: no GPU found, training in float32"
    return note
