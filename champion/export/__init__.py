"""The champion as deployable files: SavedModel, ONNX and LiteRT, each checked against Keras."""
