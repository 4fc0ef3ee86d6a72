"""Check a transfer model's backbone before any training: input size, weights, layer count.

Keras downloads `imagenet` weights on first use into ~/.keras/models (or $KERAS_HOME/models)
and reads them from there afterwards. Without network and without that file, the download
fails deep inside the first model build; here it becomes one line saying what to do.
"""

import contextlib
import functools
import io
import os
import re
import socket
import warnings
from pathlib import Path

from pipelines.errors import ConfigError
from pipelines.models.transfer import BACKBONES, backbone_layers, build_backbone, keras_weights

# An unreachable host must fail the check, not hang it: urllib has no timeout of its own.
DOWNLOAD_SOCKET_TIMEOUT_S = 30
_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+): .*? -- (.*)")


def _keras_cache_dir() -> str:
    return os.path.join(os.environ.get("KERAS_HOME", "~/.keras"), "models")


def _imagenet_error(backbone: str, error: Exception) -> ConfigError:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    fetch_failure = _FETCH_FAILURE.match(message)
    if not fetch_failure:
        return ConfigError(f"model.weights=imagenet: {backbone}'s weights did not load: {message}")
    url, reason = fetch_failure.groups()
    file_name = url.rsplit("/", 1)[-1]
    return ConfigError(
        f"model.weights=imagenet: cannot download {backbone}'s ImageNet weights ({reason}); "
        f"fetch {url} where there is network, then pass model.weights=/path/to/{file_name} "
        f"or put the file in {_keras_cache_dir()}/"
    )


@functools.cache
def _checked_backbone_layers(backbone: str, weights: str | None, image_size: tuple) -> int:
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        # Keras prints download progress, and warns about each layer a wrong file lacks:
        # the outcome is all a user needs.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_backbone(backbone=backbone, image_size=image_size, weights=weights)
    except Exception as error:  # Keras raises bare Exception for a failed download
        if weights == "imagenet":
            raise _imagenet_error(backbone, error) from None
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(
            f"model.weights '{weights}' cannot be loaded into {backbone} without its top "
            f"({type(error).__name__}: {first_line}); give a weights file of that backbone"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return len(backbone_layers(model))


def check_transfer_setup(
    *,
    backbone: str,
    weights: str | None,
    trainable_layers: int | None,
    image_size: tuple[int, int],
) -> None:
    """Raise ConfigError unless this backbone builds at `image_size` with these weights.

    `imagenet` weights are fetched (or found in Keras' cache) here, once per process.
    """
    minimum = BACKBONES[backbone].min_size
    if min(image_size) < minimum:
        raise ConfigError(
            f"model.backbone {backbone} needs images of at least {minimum}×{minimum}, got "
            f"{image_size[0]}×{image_size[1]}; set model.resize_to=[{minimum},{minimum}] or "
            "larger (or a larger data.image_size)"
        )
    weights = keras_weights(weights)
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ConfigError(
            f"model.weights '{weights}' is not a file; give imagenet, none, or the path of a "
            f"Keras weights file of {backbone} without its top"
        )
    layer_count = _checked_backbone_layers(backbone, weights, tuple(image_size))
    if trainable_layers is not None and trainable_layers > layer_count:
        raise ConfigError(
            f"model.trainable_layers must be <= {layer_count}, the layers of {backbone}, "
            f"got {trainable_layers}"
        )
