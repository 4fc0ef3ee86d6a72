"""How far to trust a prediction: calibration error (ece), temperature scaling
(temperature), the two-class decision threshold (threshold) and their config (settings).

Nothing is imported here: pipelines.config reads the settings before TensorFlow loads.
"""
