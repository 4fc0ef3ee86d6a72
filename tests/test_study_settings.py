"""What a study would silently lose: ignored sampler/pruner sections, its objective's name."""

import optuna
import pytest

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from sweep.ignored_settings import ignored_section_lines
from sweep.session import _checked_config
from sweep.study_open import check_study_metric


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["experiment=fashion10"],
        ["experiment=resnet"],
        ["experiment=transfer"],
        ["search=compare"],
        # A space that names median, run with another pruner: its median section is the shared one.
        ["experiment=resnet", "search.pruner.name=hyperband"],
        # Interpolations compare unresolved: hyperband's max_resource still follows max_epochs.
        ["search.pruner.name=median", "stages.full.max_epochs=3"],
    ],
)
def test_shipped_studies_set_nothing_they_ignore(overrides):
    assert ignored_section_lines(compose_config(overrides).search) == []


def test_a_section_for_an_unselected_pruner_or_sampler_is_named(capsys):
    # What fashion10 did: median's settings under the shared default, Hyperband.
    cfg = compose_config(
        [
            "experiment=fashion10",
            "search.pruner.median.n_startup_trials=2",
            "search.pruner.median.n_warmup_steps=3",
            "search.sampler.gp.n_startup_trials=9",
        ]
    )
    _checked_config(cfg)
    lines = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert lines == [
        "imgsweep: warning: search.sampler.gp.n_startup_trials set, but search.sampler.name is "
        "'tpe', so it is ignored; select it with search.sampler.name=gp, or remove the setting",
        "imgsweep: warning: search.pruner.median.n_startup_trials, "
        "search.pruner.median.n_warmup_steps set, but search.pruner.name is 'hyperband', so it "
        "is ignored; select it with search.pruner.name=median, or remove the setting",
    ]
    selected = compose_config(
        ["search.pruner.name=median", "search.pruner.median.n_warmup_steps=3"]
    )
    assert ignored_section_lines(selected.search) == []


def test_the_study_names_its_objective_after_the_metric(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="named", storage=storage, direction="maximize")
    check_study_metric(study, "val_accuracy")
    # What optuna-dashboard and trials_dataframe read: the name, not "Objective 0".
    reloaded = optuna.load_study(study_name="named", storage=storage)
    assert reloaded.metric_names == ["val_accuracy"]
    study.tell(study.ask(), 0.9)
    assert "value_val_accuracy" in reloaded.trials_dataframe(multi_index=False).columns


def test_a_resumed_study_without_a_name_gets_one_and_keeps_its_metric(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="older", storage=storage, direction="minimize")
    study.set_user_attr("metric", "val_loss")  # recorded by a version that did not name it
    check_study_metric(study, "val_loss")
    assert optuna.load_study(study_name="older", storage=storage).metric_names == ["val_loss"]
    with pytest.raises(ConfigError, match="optimizes val_loss, not val_auc"):
        check_study_metric(study, "val_auc")
