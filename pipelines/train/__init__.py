"""Optimizers, learning-rate schedules, augmentation, callbacks and the fit loop."""
