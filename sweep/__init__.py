"""The Optuna study over imgsweep's training pipeline, and model promotion."""
