"""imgsweep's training pipeline: config → data → model → train → tracking; no study in it."""
