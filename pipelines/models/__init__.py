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
    **settings,
):
    """The named model; `settings` are the builder's own keyword arguments from conf/model/."""
    return MODEL_BUILDERS[name](
        input_shape=input_shape, num_classes=num_classes, preprocessing=preprocessing, **settings
    )
