"""The data-quality report: duplicates and leakage across splits, label issues, odd images.

Nothing is imported here: `python -m pipelines.quality` runs this first, before its entry has
quieted TensorFlow's start-up (pipelines.data.datasets imports it).
"""
