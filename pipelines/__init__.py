"""imgsweep's training pipeline: config → data → model → train → tracking; no study in it."""

import os

# TensorFlow prints several INFO lines at import that users cannot act on; warnings still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Registers the config's resolvers (`${data_name:...}`) before any entry point composes it.
import pipelines.compose  # noqa: E402, F401
