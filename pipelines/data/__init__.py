"""Image folders in, batched tf.data pipelines out."""
