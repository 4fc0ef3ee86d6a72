"""The champion's side: the final models' candidates, promotion in the model registry, and
the registered versions put to use (`make predict`)."""
