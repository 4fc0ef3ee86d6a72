"""The study's options: every search config, the time budget, switching the sanity stages
off, and what each trial run records about where it came from."""

import json
import re
import subprocess
from pathlib import Path

import mlflow
import optuna
import pytest
import tensorflow

from pipelines.config import compose_config
from pipelines.data.folders import fingerprint
from pipelines.plan import load_data, plan_from_config
from sweep.run import run_sweep
from sweep.space import check_model_keys, parse_space
from tests.test_sweep import _children, _client

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SEARCH_OPTIONS = sorted(path.stem for path in (CONF_DIR / "search").glob("*.yaml"))
EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))
# How a user picks a study: an experiment (data, model or stages and the space sized for them),
# or for a space on the default data and model, search=<name>.
STUDY_CHOICES = [f"experiment={name}" for name in EXPERIMENTS] + [
    f"search={name}" for name in SEARCH_OPTIONS if name not in EXPERIMENTS
]
README = (CONF_DIR.parent / "README.md").read_text()
# What every study needs from `search`, whichever option chose it (conf/search/shared).
SHARED_SEARCH_KEYS = {
    "storage",
    "timeout_minutes",
    "max_consecutive_failures",
    "metric",
    "warm_start",
    "enqueue",
    "workers",
    "heartbeat_interval",
    "grace_period",
    "max_retry",
    "sampler",
    "pruner",
}


@pytest.mark.parametrize("choice", STUDY_CHOICES)
def test_every_study_choice_composes_checks_and_parses(choice):
    offline = ["model.weights=none"] if choice == "experiment=transfer" else []
    cfg = compose_config([choice, *offline])
    assert SHARED_SEARCH_KEYS | {"study_name", "n_trials", "space"} <= set(cfg.search)
    plan_from_config(cfg)
    dimensions = parse_space(cfg.search.space)
    check_model_keys(dimensions, cfg)
    assert dimensions


@pytest.mark.parametrize(
    "arguments", re.findall(r"make (?:sweep|train) ARGS=\"([^\"]+)\"", README)
)
def test_the_readme_sweep_and_train_commands_compose_and_pass_the_checks(arguments):
    """What the README tells users to type gets as far as the first trial would."""
    overrides = arguments.split()
    if "experiment=transfer" in overrides and "model.weights=none" not in overrides:
        overrides.append("model.weights=none")  # no network here for ImageNet weights
    cfg = compose_config(overrides)
    plan_from_config(cfg)
    check_model_keys(parse_space(cfg.search.space), cfg)


@pytest.mark.slow
def test_sanity_stages_switched_off_leave_only_the_full_stage(
    binary_digits, tmp_path, make_config
):
    mlruns = tmp_path / "mlruns"
    cfg, overrides = make_config(
        binary_digits,
        mlruns,
        **{
            "search.n_trials": 1,
            "stages.ablation.enabled": "false",
            "stages.overfit.enabled": "false",
        },
    )
    result = run_sweep(cfg, overrides)
    client = _client(mlruns)
    experiment = client.get_experiment_by_name("test_study")
    (trial_run,) = _children(client, experiment.experiment_id, result.parent_run_id)
    stages = _children(client, experiment.experiment_id, trial_run.info.run_id)
    assert [run.data.tags["stage"] for run in stages] == ["full"]
    assert result.study.best_trial.state == optuna.trial.TrialState.COMPLETE


@pytest.mark.slow
def test_time_budget_ends_the_running_trial_at_its_epoch_end(binary_digits, tmp_path, make_config):
    """A budget spent during the first trial: it keeps its one epoch, no trial follows."""
    cfg, overrides = make_config(
        binary_digits,
        tmp_path / "mlruns",
        **{
            "search.n_trials": 3,
            "search.timeout_minutes": 0.001,
            "search.pruner.name": "none",
            "stages.full.max_epochs": 6,
        },
    )
    result = run_sweep(cfg, overrides)
    # Queued first trials after the first never start: they wait for the study's next session.
    waiting = optuna.trial.TrialState.WAITING
    (trial,) = [trial for trial in result.study.get_trials() if trial.state != waiting]
    assert result.study.get_trials(states=(waiting,))
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert list(trial.intermediate_values) == [0]
    assert trial.value == trial.intermediate_values[0]


def _git(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *arguments], cwd=CONF_DIR.parent, capture_output=True, text=True)


def test_trial_runs_record_commit_packages_and_data_fingerprint(finished_study):
    client = _client(finished_study.mlruns)
    experiment = client.get_experiment_by_name("test_study")
    trial_runs = _children(client, experiment.experiment_id, finished_study.result.parent_run_id)
    cfg = compose_config(finished_study.overrides)
    expected_fingerprint = fingerprint(load_data(cfg).splits)
    # The tests run in a git checkout (a clone, a worktree), so every run must carry its commit.
    commit = _git("rev-parse", "HEAD").stdout.strip()
    dirty = "true" if _git("diff", "--quiet", "HEAD").returncode else "false"
    for run in trial_runs:
        tags = run.data.tags
        assert tags["data_fingerprint"] == expected_fingerprint
        assert tags["mlflow.source.git.commit"] == commit
        assert tags["git_dirty"] == dirty
        packages_file = client.download_artifacts(run.info.run_id, "packages.json")
        packages = json.loads(Path(packages_file).read_text())
        # What the running modules say of themselves, not what the recording code looked up.
        assert packages["tensorflow"] == tensorflow.__version__
        assert packages["optuna"] == optuna.__version__
        assert packages["mlflow"] == mlflow.__version__
