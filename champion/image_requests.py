"""A scoring request's images, base64 files or pixel arrays, read exactly as training read.

Every way a request can be wrong is a BadRequest: HTTP 400 from MLflow's scoring server, its
message one line naming the item and what to send instead.
"""

import base64
import binascii
import io
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from PIL import Image

from pipelines.data.checks import fit_image, read_image
from pipelines.inference import ReadSettings

IMAGE_ITEM = '{"image": "<base64 PNG or JPEG>"}'
PIXELS_ITEM = '{"pixels": [[0-255, ...], ...]}'
ITEM_FORMAT = f"each item is {IMAGE_ITEM} or {PIXELS_ITEM}"
MAX_IMAGES = 1024
# Image bytes (files as sent, pixel arrays as uint8) in one request, all images together.
MAX_REQUEST_BYTES = 32 * 2**20
MAX_SIDE = 4096
READ_FAILURES = {
    "non-image": "is not an image (send PNG or JPEG bytes, base64-encoded)",
    "undecodable": "is truncated or cannot be decoded",
    "too-small": "is smaller than the crop the model was trained with",
}


def curl_line(url: str, image: str = "image.png") -> str:
    """The one command line that asks a scoring server at `url` about one image file."""
    return (
        f"curl -s {url}/invocations -H 'Content-Type: application/json' "
        f'-d \'{{"inputs": [{{"image": "\'$(base64 -w0 {image})\'"}}]}}\''
    )


class BadRequest(MlflowException):
    """A request the model cannot answer: HTTP 400 whose message is this one line."""

    def __init__(self, line: str):
        super().__init__(line, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value: str) -> None:
        # The scoring server prefixes the whole request (megabytes of base64, say) to the
        # message of a failed prediction: the first line, ours, alone says what was wrong.
        if not hasattr(self, "_line"):
            self._line = value


def _items(model_input: Any) -> list:
    """The request's list of images (a DataFrame from Python: one row per image)."""
    if hasattr(model_input, "to_dict") and hasattr(model_input, "columns"):
        model_input = model_input.to_dict("records")
    if not isinstance(model_input, list):
        raise BadRequest(f"'inputs' must be a list of images; {ITEM_FORMAT}")
    if not model_input:
        raise BadRequest(f"'inputs' is an empty list; send at least one image: {ITEM_FORMAT}")
    if len(model_input) > MAX_IMAGES:
        raise BadRequest(
            f"{len(model_input)} images in one request; send at most {MAX_IMAGES} per request"
        )
    return model_input


def _file_bytes(where: str, value: Any) -> bytes:
    """An item's "image": base64 text (JSON), or the file's bytes themselves (Python)."""
    if isinstance(value, bytes | bytearray):
        content = bytes(value)
    elif isinstance(value, str):
        try:
            content = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{where}: 'image' is not base64 text") from None
    else:
        raise BadRequest(f"{where}: 'image' must be a base64 string, got {type(value).__name__}")
    if not content:
        raise BadRequest(f"{where}: 'image' is empty")
    return content


def _pixel_array(where: str, value: Any) -> np.ndarray:
    """An item's "pixels" as uint8 height x width [x channels], checked."""
    try:
        array = np.asarray(value, dtype="float64")
    except (ValueError, TypeError):
        raise BadRequest(
            f"{where}: 'pixels' must be numbers in rows of equal length "
            "(height x width [x channels])"
        ) from None
    channels_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))
    if not channels_ok or min(array.shape[:2], default=0) < 1:
        raise BadRequest(
            f"{where}: 'pixels' has shape {array.shape}; send height x width, or height x "
            "width x 1, 3 or 4 channels"
        )
    if max(array.shape[:2]) > MAX_SIDE:
        raise BadRequest(f"{where}: 'pixels' is {array.shape[:2]}; at most {MAX_SIDE} a side")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255:
        raise BadRequest(f"{where}: 'pixels' values must be from 0 to 255")
    pixels = np.round(array).astype(np.uint8)
    return pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels


def _too_large(where: str) -> BadRequest:
    return BadRequest(
        f"the request holds more than {MAX_REQUEST_BYTES // 2**20} MiB of images (at {where}); "
        "send fewer or smaller images per request"
    )


def _read_item(
    where: str, item: Any, settings: ReadSettings, bytes_left: int
) -> tuple[np.ndarray, int]:
    """One image as the model takes it (uint8 H x W x C), and the bytes it came as."""
    if not isinstance(item, dict) or len(item.keys() & {"image", "pixels"}) != 1:
        raise BadRequest(f"{where}: {ITEM_FORMAT}")
    fit = {
        "image_size": settings.image_size,
        "crop": settings.crop,
        "color_mode": settings.color_mode,
    }
    if "image" in item:
        content = _file_bytes(where, item["image"])
        if len(content) > bytes_left:
            raise _too_large(where)
        result, size = read_image(io.BytesIO(content), **fit), len(content)
        what = "'image'"
    else:
        pixels = _pixel_array(where, item["pixels"])
        if pixels.nbytes > bytes_left:
            raise _too_large(where)
        result, size = fit_image(Image.fromarray(pixels), **fit), pixels.nbytes
        what = "'pixels'"
    if result.status != "ok":
        raise BadRequest(f"{where}: {what} {READ_FAILURES[result.status]}")
    return result.pixels, size


def read_request(model_input: Any, settings: ReadSettings) -> np.ndarray:
    """The request's images as one uint8 batch (n, height, width, channels)."""
    images, bytes_left = [], MAX_REQUEST_BYTES
    for index, item in enumerate(_items(model_input)):
        pixels, size = _read_item(f"inputs[{index}]", item, settings, bytes_left)
        bytes_left -= size
        images.append(pixels)
    return np.stack(images)
