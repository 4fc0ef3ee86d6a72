"""The YAML search space maps onto Optuna: types, conditions, command-line fixed keys."""

import optuna
import pytest
from omegaconf import OmegaConf

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from sweep.session import override_values
from sweep.space import parse_space, sample_overrides


def _sample_many(space, fixed=None, trials=30):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    dimensions = parse_space(OmegaConf.create(space))
    samples = []
    for _ in range(trials):
        trial = study.ask()
        samples.append(sample_overrides(trial, dimensions, dict(fixed or {})))
        study.tell(trial, 0.5)
    return samples


def test_default_space_samples_valid_overrides_that_compose():
    space = compose_config().search.space
    for overrides in _sample_many(OmegaConf.to_container(space), trials=10):
        cfg = compose_config(overrides)
        assert 1e-4 <= cfg.optimizer.learning_rate <= 1e-1
        assert cfg.schedule.name in {"constant", "step", "exponential", "cosine"}
        # Each family its own batches (conf/search/default.yaml).
        choices = {32, 64, 128} if cfg.model.convs_per_block == 1 else {64, 128, 256}
        assert cfg.stages.full.batch_size in choices


def test_conditional_dimensions_follow_their_parent():
    space = {
        "schedule": {
            "override": "schedule", "type": "categorical", "choices": ["constant", "step"],
        },
        "step_factor": {
            "override": "schedule.factor", "type": "float", "low": 0.3, "high": 0.9,
            "when": {"schedule": "step"},
        },
    }  # fmt: skip
    for overrides in _sample_many(space):
        has_factor = any(item.startswith("schedule.factor=") for item in overrides)
        assert has_factor == ("schedule=step" in overrides)


def test_keys_fixed_on_the_command_line_are_not_searched():
    space = {
        "learning_rate": {"override": "optimizer.learning_rate", "type": "float", "low": 1e-4,
                          "high": 0.1, "log": True},
        "dropout": {"override": "model.dropout_rate", "type": "float", "low": 0.0, "high": 0.5},
    }  # fmt: skip
    fixed = override_values(["optimizer.learning_rate=0.01", "+extra=1", "data.root=x"])
    assert fixed == {"optimizer.learning_rate": "0.01", "extra": "1", "data.root": "x"}
    for overrides in _sample_many(space, fixed, trials=5):
        assert [item.split("=")[0] for item in overrides] == ["model.dropout_rate"]


def test_a_fixed_key_still_opens_the_dimensions_conditional_on_it():
    """`model=vgg_cnn` or `schedule=step` typed by the user: their own settings are searched."""
    space = OmegaConf.to_container(compose_config().search.space)
    for fixed, searched, not_searched in (
        ({"model": "vgg_cnn"}, "model.base_filters=", None),
        ({"schedule": "step"}, "schedule.factor=", None),
        ({"schedule": "cosine"}, None, "schedule.factor="),
    ):
        for overrides in _sample_many(space, fixed, trials=5):
            keys = " ".join(overrides)
            assert searched is None or searched in keys
            assert not_searched is None or not_searched not in keys
            assert not any(item.split("=")[0] in fixed for item in overrides)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "float", "low": 1, "high": 2}, "override must name"),
        (
            {"override": "a", "type": "float", "low": 0.0, "high": 1.0, "log": True},
            "low must be > 0",
        ),
        ({"override": "a", "type": "categorical", "choices": []}, "choices must list"),
        ({"override": "a", "type": "int", "low": 1, "high": 3, "when": {"b": 1}}, "names 'b'"),
        ({"override": "a", "type": "int", "low": 1, "high": 3, "logg": True}, "unknown field"),
        ({"override": "a", "type": "int", "low": 1, "high": 9, "step": 0.5}, "dim.step must be a"),
        (
            {"override": "a", "type": "float", "low": 0.1, "high": 1, "step": 0},
            "dim.step must be a",
        ),
        (
            {"override": "a", "type": "float", "low": 0.1, "high": 1, "step": 0.1, "log": True},
            "step and log: true do not go together",
        ),
    ],
)
def test_bad_dimensions_name_their_key(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_space(OmegaConf.create({"dim": entry}))


def test_step_draws_from_a_grid_starting_at_low():
    space = {
        "batch_size": {"override": "b", "type": "int", "low": 32, "high": 128, "step": 32},
        "rate": {"override": "r", "type": "float", "low": 0.1, "high": 0.5, "step": 0.2},
    }
    drawn = {}
    for overrides in _sample_many(space):
        for item in overrides:
            key, value = item.split("=")
            drawn.setdefault(key, set()).add(float(value))
    assert drawn["b"] == {32, 64, 96, 128}
    assert {round(value, 6) for value in drawn["r"]} == {0.1, 0.3, 0.5}
