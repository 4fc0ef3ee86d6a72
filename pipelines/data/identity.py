"""Which data a model was made from: its classes and input shape (and its files' fingerprint).

A study or a registered model records it so that numbers made on other data are never
compared: a 28x28 model is not scored on 64x64 images, nor a study resumed on other files.
"""

from dataclasses import dataclass

from pipelines.data.datasets import ImageFolderData
from pipelines.data.folders import fingerprint


def shape_text(shape: tuple[int, ...]) -> str:
    """(28, 28, 1) -> "28x28x1", as the `input_shape` version tag holds it."""
    return "x".join(str(side) for side in shape)


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(side) for side in text.split("x"))


@dataclass(frozen=True)
class DataIdentity:
    """The classes, the model input (height, width, channels) and the files of a data set."""

    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    fingerprint: str = ""

    @classmethod
    def of(cls, data: ImageFolderData) -> "DataIdentity":
        return cls(tuple(data.class_names), tuple(data.input_shape), fingerprint(data.splits))

    def describe(self) -> str:
        return f"classes {','.join(self.class_names)} on {shape_text(self.input_shape)} images"

    def fits(self, other: "DataIdentity") -> bool:
        """Whether a model of one can be scored on the other: same classes, same input."""
        return (self.class_names, self.input_shape) == (other.class_names, other.input_shape)


def alternative_name(name: str, recorded: DataIdentity, current: DataIdentity) -> str:
    """A name for the current data that does not collide with `name`'s."""
    if recorded.input_shape != current.input_shape:
        return f"{name}_{shape_text(current.input_shape)}"
    return f"{name}_{current.fingerprint[:8]}"
