"""registry.refit: budget (the winner trained to the deadline) and refit_reserve: auto."""

import re
import time

import optuna
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from champion.final_models import final_model_settings
from pipelines.config import compose_config
from pipelines.plan import load_data, plan_from_config, tracking_from_config
from pipelines.refit import refit_on_train_val
from pipelines.refit_budget import RefitBudget, StretchedSchedule
from sweep.session import open_session

# The configured rate as trained: batch-size scaling off, so the schedule alone moves it.
LEARNING_RATE = 0.004


def _client(mlruns) -> MlflowClient:
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


@pytest.mark.slow
def test_budget_refit_stretches_its_schedule_to_the_time_left_and_stops_within_an_epoch(
    binary_digits, tmp_path, make_config
):
    mlruns = tmp_path / "mlruns"
    cfg, _ = make_config(
        binary_digits,
        mlruns,
        schedule="step",
        **{
            "schedule.factor": 0.5,
            "optimizer.learning_rate": LEARNING_RATE,
            "optimizer.batch_scaling": "none",
        },
    )
    plan, data, tracker = plan_from_config(cfg), load_data(cfg), tracking_from_config(cfg)
    parent = tracker.start_run("study")
    # The trial peaked at its epoch 3 (rates 0.004, 0.002, 0.001, 0.0005), and its estimate
    # says 8 s an epoch: a digits epoch takes a fraction of that, so the first plan is short
    # and the measured epochs plan again.
    budget = RefitBudget(deadline=time.monotonic() + 25, epoch_seconds=8.0, best_epoch=3)
    result = refit_on_train_val(
        plan=plan,
        data=data,
        epochs=4,
        tracker=tracker,
        parent_run_id=parent,
        config_yaml=OmegaConf.to_yaml(cfg),
        tags={},
        budget=budget,
    )
    run = _client(mlruns).get_run(result.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["refit_mode"] == "budget"
    assert int(params["epochs_planned"]) <= 3 < 4 < int(params["epochs_trained"]), metrics
    assert int(params["epochs_trained"]) == result.epochs_trained
    # Within one epoch of the deadline, on either side of it.
    assert abs(metrics["seconds_to_deadline"]) < metrics["last_epoch_seconds"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", run.data.tags["refit_deadline"])
    history = _client(mlruns).get_metric_history(result.run_id, "lr")
    rates = [metric.value for metric in sorted(history, key=lambda metric: metric.step)]
    assert len(rates) == result.epochs_trained
    # Stretched: the trial decayed over its first 3 epochs, the refit over more; the decay never
    # goes back up, and it ends at (or, when the last epoch ran slower than planned, one step
    # before) the trial's rate at its best epoch, never below it.
    assert rates[0] == pytest.approx(LEARNING_RATE)
    assert sum(rate > LEARNING_RATE / 8 + 1e-9 for rate in rates) > 3
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:], strict=False))
    assert min(rates) >= LEARNING_RATE / 8 - 1e-9
    assert rates[-1] <= LEARNING_RATE / 4 + 1e-9
    assert 0 <= result.test_score.metrics["auc"] <= 1


def _complete_trial(study: optuna.Study, *, full_seconds: float, value: float) -> None:
    """A finished trial as the objective records one: 10 full-stage epochs, best at epoch 7."""
    study.add_trial(
        optuna.create_trial(
            value=value,
            params={},
            distributions={},
            user_attrs={"full_seconds": full_seconds, "full_epochs": 10, "best_epoch": 7},
        )
    )


@pytest.mark.slow
def test_the_auto_reserve_stops_the_loop_when_the_best_trials_refit_would_not_fit(
    binary_digits, tmp_path, make_config, capsys
):
    cfg, overrides = make_config(
        binary_digits,
        tmp_path / "mlruns",
        **{
            "search.n_trials": 3,
            "search.timeout_minutes": 1,
            "registry.refit": "budget",
            "stages.full.max_epochs": 1,
        },
    )
    session = open_session(cfg, overrides, create=True)
    assert session.reserve_fraction is None  # auto
    reported = []
    try:
        # A best trial whose refit (8 epochs of 5 s, x 260/200 images, + 20 %: 62 s) does not
        # fit the minute: no trial starts, and the line says what the time is held for.
        _complete_trial(session.study, full_seconds=50.0, value=0.99)
        assert session.run_trials(lambda *args: reported.append(args)) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert line.startswith("trial loop: no new trial with 1.0 min of search.timeout_minutes")
        held = r"held for the refit of trial \d+, the best so far \(8 epochs at its measured 5.0 s"
        assert re.search(held, line), line
        # A best trial whose refit takes 6 s: the loop runs the trial the study still needs.
        _complete_trial(session.study, full_seconds=5.0, value=0.999)
        assert session.run_trials(lambda *args: reported.append(args)) == 1
    finally:
        session.lock.close()
    assert len(reported) == 1


def test_a_fixed_reserve_overrides_auto_and_no_refit_holds_nothing():
    def reserve(*overrides):
        return final_model_settings(compose_config(list(overrides)).registry).reserve_fraction

    assert reserve() is None  # the default: auto
    assert reserve("registry.refit=budget", "registry.refit_reserve=0.3") == 0.3
    assert reserve("registry.refit=none") == 0.0


@pytest.mark.parametrize(
    ("schedule", "settings", "last_rate"),
    [
        # The trial's rate at its best epoch 4: 0.004 * 0.8 ** 4.
        ("exponential", {"schedule.decay_rate": 0.8}, LEARNING_RATE * 0.8**4),
        # Halved every 2 epochs: two halvings by epoch 4.
        ("step", {"schedule.factor": 0.5, "schedule.every_epochs": 2}, LEARNING_RATE / 4),
        # Over the refit's own run, down to its floor (10 % here) at the last epoch.
        ("cosine", {"schedule.min_fraction": 0.1}, LEARNING_RATE * 0.1),
        ("constant", {}, LEARNING_RATE),
    ],
)
def test_each_schedule_stretches_over_the_run(schedule, settings, last_rate):
    overrides = [
        f"schedule={schedule}",
        f"optimizer.learning_rate={LEARNING_RATE}",
        "optimizer.batch_scaling=none",
    ]
    plan = plan_from_config(
        compose_config([*overrides, *(f"{key}={value}" for key, value in settings.items())])
    )
    epochs = 40  # 10 times the trial's 4 epochs to its best
    stretched = StretchedSchedule(plan, best_epoch=4, progress=lambda epoch: epoch / (epochs - 1))
    rates = [stretched(epoch) for epoch in range(epochs)]
    assert rates[0] == pytest.approx(LEARNING_RATE)
    assert rates[-1] == pytest.approx(last_rate, rel=1e-5)
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:], strict=False))
    if schedule == "step":  # the trial's first 2-epoch stair now lasts 20 epochs of the 40
        assert sum(rate == pytest.approx(LEARNING_RATE) for rate in rates) == 20
