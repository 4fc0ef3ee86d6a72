"""Which data a study or a registered model was made from, checked before any training.

A study whose earlier trials ran on other images, or a registered model whose champion takes
other classes or another input shape, would compare numbers that mean different things (or
crash scoring a 28×28 model on 64×64 images): both stop the sweep at start with one line.
"""

from dataclasses import dataclass

import optuna

from pipelines.data.datasets import ImageFolderData
from pipelines.data.folders import fingerprint
from pipelines.errors import ImgsweepError

# The study's user attributes that record its data, set when its first sweep starts.
STUDY_DATA_ATTRIBUTES = ("data_class_names", "data_input_shape", "data_fingerprint")


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


def check_study_data(study: optuna.Study, current: DataIdentity) -> None:
    """Record the study's data on first use; stop with one line if it ran on other data."""
    attributes = study.user_attrs
    if not all(key in attributes for key in STUDY_DATA_ATTRIBUTES):
        # A new study, or one from before these attributes: its data is this data from now on.
        study.set_user_attr("data_class_names", list(current.class_names))
        study.set_user_attr("data_input_shape", shape_text(current.input_shape))
        study.set_user_attr("data_fingerprint", current.fingerprint)
        return
    recorded = DataIdentity(
        tuple(attributes["data_class_names"]),
        parse_shape(attributes["data_input_shape"]),
        attributes["data_fingerprint"],
    )
    if recorded == current:
        return
    same = " (the same classes and input shape, other files)" if recorded.fits(current) else ""
    raise ImgsweepError(
        f"study '{study.study_name}' ran its trials on other data ({recorded.describe()}, "
        f"fingerprint {recorded.fingerprint}) than this ({current.describe()}, fingerprint "
        f"{current.fingerprint}){same}; pass "
        f"search.study_name={alternative_name(study.study_name, recorded, current)} to start "
        "a study on this data"
    )
