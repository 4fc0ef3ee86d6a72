"""Model builders, found by the config's `model.name`."""

from pipelines.errors import ConfigError
from pipelines.models.heads import HEAD_POOLING
from pipelines.models.resnet import RESNET_BLOCKS, RESNET_STEMS, build_resnet
from pipelines.models.small_cnn import build_small_cnn
from pipelines.models.transfer import BACKBONES, build_transfer
from pipelines.models.weights import check_transfer_setup

MODEL_BUILDERS = {
    "small_cnn": build_small_cnn,
    "resnet": build_resnet,
    "transfer": build_transfer,
}

# The named choices among each builder's settings, for the config check (validate_config).
MODEL_CHOICES = {
    "small_cnn": {"pooling": HEAD_POOLING},
    "resnet": {"depth": tuple(RESNET_BLOCKS), "stem": RESNET_STEMS},
    "transfer": {"backbone": tuple(BACKBONES), "pooling": HEAD_POOLING},
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


def check_model_setup(
    *,
    name: str,
    settings: dict,
    image_size: tuple[int, int],
    searched_backbones: tuple[str, ...] = (),
) -> None:
    """What the config check cannot see: a transfer backbone's input size, weights, layers.

    Backbones the search space may pick are checked too, so that missing weights stop the
    sweep before its first trial rather than failing the trials that draw them.
    """
    if name != "transfer":
        return
    backbone_image_size = tuple(settings.get("resize_to") or image_size)
    for backbone in dict.fromkeys((settings["backbone"], *searched_backbones)):
        if backbone not in BACKBONES:
            raise ConfigError(
                f"search.space: model.backbone choice {backbone!r} is unknown; choose from: "
                f"{', '.join(BACKBONES)}"
            )
        check_transfer_setup(
            backbone=backbone,
            weights=settings.get("weights"),
            trainable_layers=settings.get("trainable_layers")
            if backbone == settings["backbone"]
            else None,
            image_size=backbone_image_size,
        )
