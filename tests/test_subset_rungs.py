"""Subset rungs (stages.full.first_epoch_shares): the full stage's epoch 0 in stratified shares
of the train split, each reported to the pruner, so a slow configuration can be stopped within
its first epoch; the epochs, the checkpoint and the time budget as without shares."""

import keras
import numpy as np
import optuna
import pytest
from omegaconf import OmegaConf

from pipelines.config import compose_config
from pipelines.data.folders import FolderSplit
from pipelines.errors import ConfigError
from pipelines.plan import plan_from_config
from pipelines.train.callbacks import StopAtDeadline
from pipelines.train.fine_tune import fit_full_stage
from sweep.pruning import OptunaPruningCallback, PrunerResource
from sweep.run import run_sweep
from sweep.study import build_pruner
from tests.conftest import small_overrides

# The study's reference epoch: 4 s. The slow trial's epoch takes two of them.
REFERENCE = 4.0
SECONDS = PrunerResource("seconds", True, REFERENCE)


def _split(counts: dict[int, int]) -> FolderSplit:
    labels = np.concatenate([np.full(count, label) for label, count in counts.items()])
    return FolderSplit("train", tuple(f"image{index}.png" for index in range(len(labels))), labels)


def test_shares_cover_the_split_once_with_each_class_spread_evenly():
    train = _split({0: 10, 1: 7, 2: 2})
    shares = train.shares(4, seed=3)
    assert [share.name for share in shares] == [f"train[share {n}/4]" for n in range(1, 5)]
    files = [file for share in shares for file in share.files]
    assert sorted(files) == sorted(train.files)  # disjoint, and together the whole split
    for label in (0, 1, 2):
        per_share = [int(np.sum(share.labels == label)) for share in shares]
        assert max(per_share) - min(per_share) <= 1, (label, per_share)
    # The smallest class does not land in the first shares with every other class's remainder.
    assert [len(share) for share in shares] in ([5, 5, 5, 4], [5, 5, 4, 5], [5, 4, 5, 5])
    assert [share.files for share in train.shares(4, seed=3)] == [s.files for s in shares]
    assert [share.files for share in train.shares(4, seed=4)] != [s.files for s in shares]
    # No more shares than images, and one share is the split.
    assert len(_split({0: 2, 1: 1}).shares(4, seed=0)) == 3
    (whole,) = train.shares(1, seed=0)
    assert sorted(whole.files) == sorted(train.files)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class EpochRecorder(keras.callbacks.Callback):
    """What the whole-epoch callbacks (checkpoint, metrics log, early stopping) see."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


class FakeFit:
    """model.fit's callback calls without training: an epoch over `split` takes `seconds` per
    image of the fake clock, and scores `value_at(training seconds)`."""

    def __init__(self, train, clock, *, seconds_per_image, value_at):
        self.train, self.clock = train, clock
        self.seconds_per_image, self.value_at = seconds_per_image, value_at
        self.started = clock.now
        self.calls = []

    def __call__(self, model, *, epochs, callbacks, initial_epoch=0, train_split=None):
        split = train_split or self.train
        names = [type(callback).__name__ for callback in callbacks]
        self.calls.append((split.name, initial_epoch, epochs, names))
        model.stop_training = False
        history = keras.callbacks.History()
        history.epoch = []
        for callback in callbacks:
            callback.set_model(model)
            callback.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            self.clock.now += self.seconds_per_image * len(split)
            logs = {"val_auc": self.value_at(self.clock.now - self.started)}
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            history.epoch.append(epoch)
            if model.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()
        return history


def _tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _full_stage(study, *, shares: int, value_at, max_epochs: int = 3):
    """A slow trial's full stage (an epoch of 40 images: 8 s, two reference epochs) with the
    study's pruner and a far deadline: (epochs run, pruner callback, fit, recorder)."""
    train, clock = _split({0: 20, 1: 20}), FakeClock()
    fit = FakeFit(train, clock, seconds_per_image=0.2, value_at=value_at)
    pruner = OptunaPruningCallback(
        study.ask(), last_epoch=max_epochs - 1, resource=SECONDS, clock=clock
    )
    deadline, recorder = StopAtDeadline(deadline=float("inf")), EpochRecorder()
    epochs_run = fit_full_stage(
        _tiny_model(),
        fit=fit,
        recompile=lambda model: model,
        schedule=lambda epoch: 0.01 / (epoch + 1),
        max_epochs=max_epochs,
        callbacks=[recorder, deadline, pruner],
        stoppers=[deadline, pruner],
        first_epoch_shares=train.shares(shares, seed=0) if shares > 1 else (),
    )
    return epochs_run, pruner, fit, recorder


def test_epoch_zero_in_shares_reports_each_share_and_counts_as_one_epoch():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    epochs_run, _, fit, recorder = _full_stage(study, shares=4, value_at=lambda _: 0.9)
    assert epochs_run == 3
    # Four one-epoch fits over the shares, then epochs 1-2 over the whole split.
    assert [call[:3] for call in fit.calls] == [
        *((f"train[share {n}/4]", 0, 1) for n in range(1, 5)),
        ("train", 1, 3),
    ]
    # Between shares only the pruner runs beside the learning rate; the deadline and the
    # whole-epoch callbacks see epoch 0 once, at the last share's end.
    trial_stoppers = ["LearningRateScheduler", "OptunaPruningCallback"]
    assert [call[3] for call in fit.calls[:3]] == [trial_stoppers] * 3
    assert fit.calls[3][3] == fit.calls[4][3]
    assert recorder.epochs == [0, 1, 2]
    # Reports at each share's training time (2 s: half a reference epoch), then each epoch's.
    assert list(study.trials[0].intermediate_values) == [5, 10, 15, 20, 40, 60]


def test_a_slow_trial_meets_the_first_rung_within_its_first_epoch():
    # The shipped Hyperband in one bracket: its first rung after one reference epoch (4 s).
    section = compose_config(
        ["search.pruner.resource=seconds", "search.pruner.hyperband.max_resource=3"]
    ).search.pruner
    study = optuna.create_study(
        direction="maximize", pruner=build_pruner(OmegaConf.to_container(section, resolve=True))
    )
    _full_stage(study, shares=1, value_at=lambda _: 0.9)  # the leader goes on at each rung
    # Worse than the leader: without shares it is stopped at its first epoch's end (8 s in),
    # with four shares at the second share's end, after half the training.
    whole, pruner_whole, _, _ = _full_stage(study, shares=1, value_at=lambda _: 0.8)
    assert pruner_whole.stop_reason == (
        "pruned at epoch 1 (val_auc 0.8000, after 8 s of training, 2.0 reference epochs, "
        "by the pruner)"
    )
    in_shares, pruner, fit, recorder = _full_stage(study, shares=4, value_at=lambda _: 0.8)
    assert pruner.stop_reason == (
        "pruned at epoch 1 (val_auc 0.8000, after 4 s of training, 1.0 reference epochs, "
        "by the pruner)"
    )
    assert whole == in_shares == 1
    assert [call[0] for call in fit.calls] == ["train[share 1/4]", "train[share 2/4]"]
    assert recorder.epochs == []  # the pruned trial never finished an epoch


def test_the_time_budget_still_ends_training_at_a_whole_epoch():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    train, clock = _split({0: 20, 1: 20}), FakeClock()
    fit = FakeFit(train, clock, seconds_per_image=0.2, value_at=lambda _: 0.9)
    pruner = OptunaPruningCallback(study.ask(), last_epoch=2, resource=SECONDS, clock=clock)
    # Already past: without shares the deadline ends training after epoch 0, and so it does
    # with them, after the last share rather than the first.
    deadline, recorder = StopAtDeadline(deadline=0.0), EpochRecorder()
    epochs_run = fit_full_stage(
        _tiny_model(),
        fit=fit,
        recompile=lambda model: model,
        schedule=lambda epoch: 0.01,
        max_epochs=3,
        callbacks=[recorder, deadline, pruner],
        stoppers=[deadline, pruner],
        first_epoch_shares=train.shares(2, seed=0),
    )
    assert epochs_run == 1 and recorder.epochs == [0]
    assert deadline.stop_reason == "time budget reached at epoch 1"
    assert len(fit.calls) == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["stages.full.first_epoch_shares=0"],
            "stages.full.first_epoch_shares must be >= 1, got 0",
        ),
        (
            ["stages.full.first_epoch_shares=2.5"],
            "stages.full.first_epoch_shares must be a whole number, got 2.5",
        ),
        (
            ["stages.full.first_epoch_shares=4"],
            "stages.full.first_epoch_shares=4 needs search.pruner.resource=seconds, which "
            "places each share's report at its training time; set it, or first_epoch_shares=1",
        ),
    ],
)
def test_bad_values_of_the_shares_are_one_line(binary_digits, tmp_path, overrides, message):
    cfg = compose_config(small_overrides(binary_digits, tmp_path / "mlruns") + overrides)
    with pytest.raises(ConfigError) as error:
        plan_from_config(cfg)
    assert str(error.value) == message


def test_shares_need_no_seconds_without_a_pruner(binary_digits, tmp_path):
    overrides = ["stages.full.first_epoch_shares=4", "search.pruner.name=none"]
    cfg = compose_config(small_overrides(binary_digits, tmp_path / "mlruns") + overrides)
    assert plan_from_config(cfg).full_first_epoch_shares == 4


@pytest.mark.slow
def test_a_study_with_subset_rungs_reports_each_share_and_logs_whole_epochs(
    binary_digits, tmp_path
):
    import mlflow

    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{
            "search.n_trials": 1,
            "search.pruner.resource": "seconds",
            "stages.full.first_epoch_shares": 3,
        },
    )
    study = run_sweep(compose_config(overrides), overrides).study
    (trial,) = study.get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE
    # Three shares of epoch 0, then epoch 1: four reports, at increasing training time.
    steps = list(trial.intermediate_values)
    assert len(steps) == 4 and steps == sorted(set(steps))
    client = mlflow.MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    (full,) = client.search_runs(
        [client.get_run(trial.user_attrs["mlflow_run_id"]).info.experiment_id],
        filter_string="tags.stage = 'full'",
    )
    assert full.data.params["first_epoch_shares"] == "3"
    history = client.get_metric_history(full.info.run_id, "val_auc")
    assert sorted(metric.step for metric in history) == [0, 1]  # whole epochs only
    assert trial.user_attrs["best_epoch"] in (0, 1)
