"""imgsweep's training pipeline: config → data → model → train → tracking; no study in it."""

import os

# TensorFlow prints several INFO lines at import that users cannot act on; warnings still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
