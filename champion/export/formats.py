"""Writers and runners of the export formats: each turns a Keras model into one artifact and
loads an artifact back as a function from raw-pixel batches to the model's outputs.

All three go through Keras' own `model.export`, so they share one input signature (float32
raw 0..255 pixels named `image`, any batch size). Keras' SavedModel and ONNX exports call the
model without `training`, which leaves Keras' random augmentation layers (training=True by
default) active in the exported graph: a model is exported through an inference view that
fixes training=False. For ONNX, Keras' export converts that traced function
with tf2onnx (`tf2onnx.convert.from_function`) after patching tf2onnx 1.17 for NumPy 2, which
tf2onnx's own `from_keras` path does not do.
"""

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str  # as a table shows it
    artifact: str  # file or folder name inside the export folder
    keras_format: str  # model.export's format=
    load: Callable[[Path], Runner]


@contextlib.contextmanager
def quiet_converters() -> Iterator[None]:
    """tf2onnx and the TFLite converter log pages of warnings; the outcome is one line here."""
    names = ("tf2onnx", "absl", "tensorflow")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            # Keras' tf2onnx patch probes `np.object`, which NumPy 2 warns about.
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def inference_view(model: keras.Model) -> keras.Model:
    """`model` called with training=False inside a Functional graph: what its exports trace."""
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    return keras.Model(inputs, model(inputs, training=False), name=model.name)


def write_export(model: keras.Model, export_format: ExportFormat, folder: Path) -> Path:
    """Write `model` in `export_format` under `folder`; returns the artifact's path."""
    import tensorflow as tf

    path = folder / export_format.artifact
    # An explicit signature: a model loaded from MLflow has never been called, which Keras'
    # ONNX export otherwise refuses.
    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")]
    with quiet_converters():
        inference_view(model).export(
            str(path), format=export_format.keras_format, verbose=False, input_signature=signature
        )
    return path


def load_saved_model(path: Path) -> Runner:
    """The SavedModel's `serve` endpoint, the one TF Serving calls."""
    import tensorflow as tf

    # The loaded object owns the variables: the endpoint alone would outlive them.
    loaded = tf.saved_model.load(str(path))
    return lambda images: np.asarray(loaded.serve(images))


def load_onnx(path: Path) -> Runner:
    """An ONNX Runtime session on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda images: session.run(None, {input_name: images})[0]


def load_litert(path: Path) -> Runner:
    """A LiteRT interpreter, resized when the batch size changes (resizing costs an allocation)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    allocated = [None]

    def run(images: np.ndarray) -> np.ndarray:
        if allocated[0] != images.shape:
            interpreter.resize_tensor_input(input_index, images.shape)
            interpreter.allocate_tensors()
            allocated[0] = images.shape
        interpreter.set_tensor(input_index, images)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return run


FORMATS = {
    "saved_model": ExportFormat(
        "saved_model", "SavedModel", "saved_model", "tf_saved_model", load_saved_model
    ),
    "onnx": ExportFormat("onnx", "ONNX Runtime", "model.onnx", "onnx", load_onnx),
    "litert": ExportFormat("litert", "LiteRT", "model.tflite", "litert", load_litert),
}


def keras_runner(model: keras.Model) -> Runner:
    """The Keras model as `make predict` runs it (predict_on_batch: a compiled function)."""
    return lambda images: np.asarray(model.predict_on_batch(images))
