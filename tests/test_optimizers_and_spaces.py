"""Optimizers with weight decay and clipping, label smoothing, and the per-family search spaces."""

import keras
import numpy as np
import optuna
import pytest

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from pipelines.plan import plan_from_config
from pipelines.train.fit import compile_classifier
from pipelines.train.optimizers import OPTIMIZERS, build_optimizer
from sweep.run import run_sweep
from sweep.space import check_model_keys, parse_space, sample_overrides
from tests.conftest import small_overrides


def _one_step(optimizer, *, start: float, gradient: float) -> float:
    variable = keras.Variable(np.array([start], dtype="float32"))
    optimizer.apply_gradients([(np.array([gradient], dtype="float32"), variable)])
    return float(variable.numpy()[0])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_composes_from_its_yaml_and_builds(name):
    plan = plan_from_config(compose_config([f"optimizer={name}", "optimizer.clipnorm=1.0"]))
    optimizer = build_optimizer(name=plan.optimizer_name, **plan.optimizer_settings)
    assert isinstance(optimizer, OPTIMIZERS[name])
    assert optimizer.clipnorm == 1.0
    assert (optimizer.weight_decay is not None) == (name == "adamw")


def test_weight_decay_shrinks_weights_and_clipping_bounds_the_step():
    decayed = build_optimizer(name="sgd", learning_rate=0.1, momentum=0.0, weight_decay=0.5)
    assert _one_step(decayed, start=1.0, gradient=0.0) == pytest.approx(0.95)
    clipped = build_optimizer(name="sgd", learning_rate=1.0, momentum=0.0, clipnorm=1.0)
    assert _one_step(clipped, start=0.0, gradient=100.0) == pytest.approx(-1.0)
    plain = build_optimizer(name="sgd", learning_rate=1.0, momentum=0.0)
    assert _one_step(plain, start=0.0, gradient=100.0) == pytest.approx(-100.0)


@pytest.mark.parametrize(
    ("momentum", "nesterov", "after_two_steps"),
    # Gradient 1 at learning rate 0.1: plain steps add -0.1 each; momentum carries 0.8 of the
    # last step into the next (-0.1, then -0.18); Nesterov looks one step ahead.
    [(0.0, False, -0.2), (0.8, False, -0.28), (0.8, True, -0.424)],
)
def test_sgd_momentum_and_nesterov_from_the_config_change_the_steps(
    momentum, nesterov, after_two_steps
):
    overrides = ["optimizer=sgd", "optimizer.learning_rate=0.1", f"optimizer.momentum={momentum}"]
    plan = plan_from_config(compose_config([*overrides, f"optimizer.nesterov={nesterov}"]))
    optimizer = build_optimizer(name=plan.optimizer_name, **plan.optimizer_settings)
    variable = keras.Variable(np.array([0.0], dtype="float32"))
    for _ in range(2):
        optimizer.apply_gradients([(np.array([1.0], dtype="float32"), variable)])
    assert float(variable.numpy()[0]) == pytest.approx(after_two_steps)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.weight_decay=-1", "optimizer.weight_decay must be >= 0"),
        ("optimizer.clipnorm=0", "optimizer.clipnorm must be > 0"),
        ("loss.label_smoothing=0.9", "loss.label_smoothing must be <= 0.5"),
        ("compute.mixed_precision=maybe", "compute.mixed_precision must be true or false"),
    ],
)
def test_bad_training_settings_name_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        plan_from_config(compose_config([override]))


@pytest.mark.parametrize("num_classes", [2, 5])
def test_label_smoothing_penalises_overconfident_outputs(num_classes):
    inputs = keras.Input(shape=(1,))
    model = keras.Model(inputs, keras.layers.Dense(1 if num_classes == 2 else num_classes)(inputs))
    labels = np.eye(num_classes, dtype="float32")[[0, 1]]
    labels = labels[:, 1:] if num_classes == 2 else labels
    confident = np.clip(labels, 1e-4, 1 - 1e-4)
    losses = {}
    for smoothing in (0.0, 0.2):
        compile_classifier(
            model,
            optimizer=build_optimizer(name="adam", learning_rate=1e-3),
            num_classes=num_classes,
            label_smoothing=smoothing,
        )
        losses[smoothing] = float(model.loss(labels, confident))
    assert losses[0.0] < 0.01 < losses[0.2]


@pytest.mark.parametrize("model", ["resnet", "transfer"])
def test_family_experiments_sample_valid_configs(model):
    # ImageNet weights cannot be fetched here; the download check has tests of its own.
    base = [f"experiment={model}", *(["model.weights=none"] if model == "transfer" else [])]
    cfg = compose_config(base)
    assert cfg.model.name == model
    dimensions = parse_space(cfg.search.space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(6):
        trial = study.ask()
        plan = plan_from_config(compose_config(base + sample_overrides(trial, dimensions, {})))
        assert plan.model_name == model
        study.tell(trial, 0.5)


def test_a_space_searching_keys_the_model_lacks_is_refused_before_the_study(tmp_path):
    dense = "{override: model.dense_units, type: categorical, choices: [64]}"
    overrides = small_overrides(
        tmp_path / "data", tmp_path / "mlruns", model="resnet", **{"+search.space.dense": dense}
    )
    with pytest.raises(ConfigError, match=r"search.space.dense sets model.dense_units"):
        run_sweep(compose_config(overrides), overrides)
    assert not (tmp_path / "mlruns").exists()


def test_the_default_space_picks_the_family_and_its_own_dimensions():
    dimensions = parse_space(compose_config().search.space)
    # model=resnet on the command line: the family is fixed, its conditional keys not drawn.
    check_model_keys(dimensions, compose_config(["model=resnet"]))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    families = set()
    for _ in range(12):
        trial = study.ask()
        overrides = sample_overrides(trial, dimensions, {})
        cfg = compose_config(overrides)
        families.add(trial.params["family"])
        vgg = trial.params["family"] == "vgg_cnn"
        assert cfg.model.convs_per_block == (2 if vgg else 1)
        assert ("vgg_base_filters" in trial.params) == vgg
        study.tell(trial, 0.5)
    assert families == {"small_cnn", "vgg_cnn"}
    resnet_overrides = sample_overrides(study.ask(), dimensions, {"model": "resnet"})
    assert not any(item.startswith("model.base_filters") for item in resnet_overrides)
