"""Model builders, found by the config's `model.name`."""

from pipelines.models.small_cnn import build_small_cnn

MODEL_BUILDERS = {
    "small_cnn": build_small_cnn,
}


def build_model(
    *,
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocessing: str,
    label_mode: str = "auto",
    **settings,
):
    """The named model; `settings` are the builder's own keyword arguments from conf/model/.

    Every builder passes `label_mode` (binary: one sigmoid unit; categorical: softmax) on to
    `classifier_output`.
    """
    return MODEL_BUILDERS[name](
        input_shape=input_shape,
        num_classes=num_classes,
        preprocessing=preprocessing,
        label_mode=label_mode,
        **settings,
    )
