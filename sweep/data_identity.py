"""A study records the data its first sweep ran on; a resumed sweep on other files stops.

Numbers made on other images (or other classes, or another input shape) would be compared
as if they meant the same: the sweep stops at start with one line naming a new study name.
"""

import optuna

from pipelines.data.identity import DataIdentity, alternative_name, parse_shape, shape_text
from pipelines.errors import ImgsweepError

# The study's user attributes that record its data, set when its first sweep starts.
STUDY_DATA_ATTRIBUTES = ("data_class_names", "data_input_shape", "data_fingerprint")


def check_study_data(study: optuna.Study, current: DataIdentity) -> None:
    """Record the study's data on first use; stop with one line if it ran on other data."""
    attributes = study.user_attrs
    if not all(key in attributes for key in STUDY_DATA_ATTRIBUTES):
        # A new study: its data is this data from now on.
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
