"""The pruner's resource (search.pruner.resource): Hyperband's rungs at equal training seconds
for a fast and a slow trial, epochs as before, the fallback without a reference epoch, and the
key's bad values as one line."""

import subprocess
import sys

import keras
import optuna
import pytest
from omegaconf import OmegaConf

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from sweep.pruning import OptunaPruningCallback, PrunerResource, trial_resource
from sweep.run import run_sweep
from sweep.study import build_pruner
from tests.conftest import small_overrides

TrialState = optuna.trial.TrialState
# The study's reference epoch: 4 s. The fast trial's epochs take half of one, the slow one's two.
REFERENCE = 4.0
FAST, SLOW = 2.0, 8.0


class FakeClock:
    """time.monotonic for one fake trial: moved on by hand, an epoch's duration at a time."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pruner(resource: str, **hyperband) -> optuna.pruners.BasePruner:
    """The shipped pruner section (Hyperband), with `resource` and any of its settings."""
    overrides = [f"search.pruner.resource={resource}"]
    overrides += [f"search.pruner.hyperband.{key}={value}" for key, value in hyperband.items()]
    section = compose_config(overrides).search.pruner
    return build_pruner(OmegaConf.to_container(section, resolve=True))


def _tiny_model() -> keras.Model:
    """A model for the callback to stop: training is faked, its stop flag is real."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # as model.fit sets it
    return model


def _fake_trial(study, resource, *, epoch_seconds, epochs, value_at) -> OptunaPruningCallback:
    """Drive the pruning callback through `epochs` epochs of `epoch_seconds` each, reporting
    `value_at(training seconds)`, on a tiny Keras model; returns it after its last epoch or
    the pruner's stop."""
    clock = FakeClock()
    callback = OptunaPruningCallback(
        study.ask(), last_epoch=epochs - 1, resource=resource, clock=clock
    )
    callback.set_model(_tiny_model())
    callback.on_train_begin()
    for epoch in range(epochs):
        clock.now += epoch_seconds
        callback.on_epoch_end(epoch, {"val_auc": value_at(clock.now - 1000.0)})
        if callback.model.stop_training:
            break
    return callback


def _falls_back_after(seconds: float):
    """Val AUC over training time: good until `seconds`, worse than the leader from then on."""
    return lambda trained: 0.95 if trained < seconds else 0.85


def test_rungs_fall_at_equal_training_seconds_for_a_fast_and_a_slow_trial():
    # The shipped Hyperband settings (min_resource 1, reduction_factor 4) in one bracket
    # (max_resource 3), so every trial meets the same rungs: after 1, 4, 16 reference epochs.
    study = optuna.create_study(direction="maximize", pruner=_pruner("seconds", max_resource=3))
    seconds = PrunerResource("seconds", True, REFERENCE)
    # The first trial at each rung goes on: the leader, 0.9 throughout.
    leader = _fake_trial(study, seconds, epoch_seconds=SLOW, epochs=4, value_at=lambda _: 0.9)
    assert leader.stop_reason is None
    # Both beat the leader until 4 reference epochs (16 s) of training, then fall behind it.
    fast = _fake_trial(
        study, seconds, epoch_seconds=FAST, epochs=12, value_at=_falls_back_after(16)
    )
    slow = _fake_trial(
        study, seconds, epoch_seconds=SLOW, epochs=12, value_at=_falls_back_after(16)
    )
    # Each is pruned at the second rung, 16 s in: the fast trial had 8 epochs there, the slow 2.
    assert fast.stop_reason == (
        "pruned at epoch 8 (val_auc 0.8500, after 16 s of training, 4.0 reference epochs, "
        "by the pruner)"
    )
    assert slow.stop_reason == (
        "pruned at epoch 2 (val_auc 0.8500, after 16 s of training, 4.0 reference epochs, "
        "by the pruner)"
    )
    # Steps are tenths of a reference epoch of training, whatever the epoch's length.
    fast_steps, slow_steps = (list(t.intermediate_values) for t in study.trials[1:])
    assert fast_steps == [5, 10, 15, 20, 25, 30, 35, 40]
    assert slow_steps == [20, 40]


def test_with_epochs_the_rungs_fall_at_the_same_epochs_whatever_they_cost():
    study = optuna.create_study(direction="maximize", pruner=_pruner("epochs", max_resource=3))
    epochs = PrunerResource("epochs")
    _fake_trial(study, epochs, epoch_seconds=SLOW, epochs=6, value_at=lambda _: 0.9)
    # Worse than the leader from the start: pruned at the first rung, after its second epoch
    # (step 1: steps are the epochs, from 0), 4 s in for the fast trial and 16 s for the slow.
    for epoch_seconds in (FAST, SLOW):
        trial = _fake_trial(
            study, epochs, epoch_seconds=epoch_seconds, epochs=6, value_at=lambda _: 0.8
        )
        assert trial.stop_reason == "pruned at epoch 2 (val_auc 0.8000, by the pruner)"
        assert list(study.trials[-1].intermediate_values) == [0, 1]


def test_an_epoch_the_deadline_ended_and_the_last_epoch_are_not_pruned():
    # A threshold no AUC reaches: the pruner would stop every trial at every epoch.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(2.0))
    seconds = PrunerResource("seconds", True, REFERENCE)
    last = _fake_trial(study, seconds, epoch_seconds=FAST, epochs=1, value_at=lambda _: 0.9)
    assert last.stop_reason is None  # its only epoch is its last
    deadline = OptunaPruningCallback(study.ask(), last_epoch=5, resource=seconds)
    deadline.set_model(_tiny_model())
    deadline.on_train_begin()
    deadline.model.stop_training = True  # as StopAtDeadline, called before it, leaves it
    deadline.on_epoch_end(0, {"val_auc": 0.9})
    assert deadline.stop_reason is None
    assert study.trials[-1].intermediate_values  # reported all the same


def test_a_second_fit_runs_the_training_time_on():
    # A transfer model's full stage fits twice (head, then fine-tune) with the same callbacks.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    clock = FakeClock()
    callback = OptunaPruningCallback(
        study.ask(), last_epoch=3, resource=PrunerResource("seconds", True, REFERENCE), clock=clock
    )
    callback.set_model(_tiny_model())
    for epochs in ((0, 1), (2, 3)):
        callback.on_train_begin()
        for epoch in epochs:
            clock.now += REFERENCE
            callback.on_epoch_end(epoch, {"val_auc": 0.9})
    assert list(study.trials[0].intermediate_values) == [10, 20, 30, 40]


def test_steps_mean_the_same_on_a_machine_twice_as_slow():
    here = PrunerResource("seconds", True, REFERENCE)
    slower = PrunerResource("seconds", True, 2 * REFERENCE)
    for epoch, seconds in enumerate([3.1, 6.0, 9.4, 30.0]):
        assert here.step(epoch, seconds) == slower.step(epoch, 2 * seconds)
    assert [here.step(epoch, seconds) for epoch, seconds in enumerate([3.1, 6.0])] == [8, 15]


def test_epochs_far_shorter_than_a_step_still_report_every_epoch():
    # Optuna ignores a step reported twice: each epoch moves the step on by at least one.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    tiny = PrunerResource("seconds", True, reference_epoch_seconds=100.0)
    _fake_trial(study, tiny, epoch_seconds=1.0, epochs=5, value_at=lambda trained: trained / 10)
    (trial,) = study.trials
    assert list(trial.intermediate_values) == [0, 1, 2, 3, 4]
    assert list(trial.intermediate_values.values()) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_without_a_reference_epoch_seconds_fall_back_to_epochs_with_one_line():
    resource, note = trial_resource("seconds", None)
    assert resource == PrunerResource("epochs", in_reference_epochs=True)
    assert note == (
        "search.pruner.resource=seconds: the study has no measured reference epoch time "
        "(reference_epoch_seconds=None), so its pruner counts epochs, each as one reference epoch"
    )
    # Each epoch counts as one reference epoch, in the steps the pruner was built for.
    assert [resource.step(epoch, seconds=999.0) for epoch in range(3)] == [10, 20, 30]
    assert trial_resource("seconds", 0.0)[1] is not None
    assert trial_resource("epochs", None) == (PrunerResource("epochs"), None)
    assert trial_resource("seconds", 2.5) == (PrunerResource("seconds", True, 2.5), None)


def test_the_step_arguments_are_reference_epochs_with_seconds():
    hyperband = _pruner("seconds", min_resource=1.5)
    assert (hyperband._min_resource, hyperband._max_resource) == (15, 120)
    threshold = {"lower": 0.5, "n_warmup_steps": 2, "interval_steps": 1}
    pruner = build_pruner({"name": "threshold", "resource": "seconds", "threshold": threshold})
    assert (pruner._n_warmup_steps, pruner._interval_steps) == (20, 10)
    # Epochs: Optuna's arguments as they are.
    assert _pruner("epochs")._max_resource == 12


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["search.pruner.resource=minutes"],
            "search.pruner.resource 'minutes' is unknown; choose one of: epochs, seconds",
        ),
        (
            ["search.pruner.resource=seconds", "search.pruner.name=median"],
            "search.pruner.resource=seconds does not suit search.pruner.name=median, which "
            "compares trials at the same step (steps of training time rarely are); set "
            "search.pruner.resource=epochs, or name=hyperband or successive_halving",
        ),
    ],
)
def test_bad_values_of_the_resource_are_one_line(binary_digits, tmp_path, overrides, message):
    mlruns = tmp_path / "mlruns"
    cfg = compose_config(small_overrides(binary_digits, mlruns) + overrides)
    with pytest.raises(ConfigError) as error:
        run_sweep(cfg, overrides)
    assert str(error.value) == message
    assert not (mlruns / "optuna.db").exists() and not (mlruns / "mlflow.db").exists()
    # A pruner section passed on its own is checked the same way.
    with pytest.raises(ConfigError, match="^search.pruner.resource"):
        build_pruner(OmegaConf.to_container(cfg.search.pruner, resolve=True))


@pytest.mark.slow
def test_the_command_line_names_a_bad_resource_in_one_line(binary_digits, tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep",
            *small_overrides(binary_digits, tmp_path / "mlruns"),
            "search.pruner.resource=images",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert lines == [
        "imgsweep: error: search.pruner.resource 'images' is unknown; choose one of: "
        "epochs, seconds"
    ]


@pytest.mark.slow
def test_a_study_with_seconds_reports_training_time_in_reference_epochs(binary_digits, tmp_path):
    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits, mlruns, **{"search.n_trials": 1, "search.pruner.resource": "seconds"}
    )
    # The study's reference epoch, as measured before its first trial: a millisecond, so that
    # the steps of a real trial's epochs (tenths of a second each) are in the hundreds.
    mlruns.mkdir()
    created = optuna.create_study(
        study_name="test_study", storage=f"sqlite:///{mlruns / 'optuna.db'}", direction="maximize"
    )
    created.set_user_attr("reference_epoch_seconds", 0.001)
    study = run_sweep(compose_config(overrides), overrides).study
    (trial,) = study.get_trials()
    reference = study.user_attrs["reference_epoch_seconds"]
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["pruner_resource"] == "seconds"
    steps = list(trial.intermediate_values)
    assert len(steps) == 2 and steps[0] < steps[1]  # one report per epoch of the full stage
    # The last step is the full stage's training seconds in tenths of a reference epoch: more
    # than 0.05 s for two epochs, and less than the whole stage's recorded time.
    assert 10 * 0.05 / reference < steps[-1] <= 10 * trial.user_attrs["full_seconds"] / reference


def test_the_rungs_bench_reads_back_how_a_study_reported(tmp_path):
    # bench/rungs.py reads each study back from its storage after the run: a study measured in
    # seconds whose trials fell back to epochs shows as "epochs*", with its reference epoch.
    from bench.rungs import _resources_used
    from sweep.storage import storage_url

    mlruns = tmp_path / "mlruns"
    mlruns.mkdir()
    overrides = small_overrides(tmp_path, mlruns, **{"search.pruner.resource": "seconds"})
    study = optuna.create_study(
        study_name="test_study", storage=storage_url(None, mlruns), direction="maximize"
    )
    study.set_user_attr("reference_epoch_seconds", 2.5)
    trial = study.ask()
    trial.set_user_attr("pruner_resource", "epochs")
    study.tell(trial, 0.9)
    assert _resources_used(overrides) == ("epochs*", 2.5)
