"""The study's options: every search config, the time budget, switching the sanity stages
off, and what each trial run records about where it came from."""

import json
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest

from pipelines.config import compose_config
from pipelines.data.folders import fingerprint
from pipelines.plan import load_data, plan_from_config
from pipelines.provenance import git_state
from sweep.run import run_sweep
from sweep.space import check_model_keys, parse_space
from tests.test_sweep import _children, _client

SEARCH_DIR = Path(__file__).resolve().parents[1] / "conf" / "search"
SEARCH_OPTIONS = sorted(path.stem for path in SEARCH_DIR.glob("*.yaml"))
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


# ImageNet weights cannot be fetched here; the download check has tests of its own.
OFFLINE = {"transfer": ["model.weights=none"]}


@pytest.mark.parametrize("option", SEARCH_OPTIONS)
def test_every_search_option_composes_checks_and_parses(option):
    cfg = compose_config([f"search={option}", *OFFLINE.get(option, [])])
    assert SHARED_SEARCH_KEYS | {"study_name", "n_trials", "space"} <= set(cfg.search)
    plan_from_config(cfg)
    dimensions = parse_space(cfg.search.space)
    check_model_keys(dimensions, cfg)
    assert dimensions


def test_fashion10_search_selects_its_data_stages_and_schedule():
    cfg = compose_config(["search=fashion10"])
    assert cfg.data.root == "data/fashion10"
    assert cfg.schedule.name == "cosine"
    assert cfg.stages.full.max_epochs == 15
    assert cfg.search.timeout_minutes < 30


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
    (trial,) = result.study.get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert list(trial.intermediate_values) == [0]
    assert trial.value == trial.intermediate_values[0]


def test_trial_runs_record_commit_packages_and_data_fingerprint(finished_study):
    client = _client(finished_study.mlruns)
    experiment = client.get_experiment_by_name("test_study")
    trial_runs = _children(client, experiment.experiment_id, finished_study.result.parent_run_id)
    cfg = compose_config(finished_study.overrides)
    expected_fingerprint = fingerprint(load_data(cfg).splits)
    for run in trial_runs:
        tags = run.data.tags
        assert tags["data_fingerprint"] == expected_fingerprint
        if git_state():  # a git checkout, as CI's clone is
            assert tags["mlflow.source.git.commit"] == git_state()["commit"]
            assert tags["git_dirty"] in {"true", "false"}
        packages_file = client.download_artifacts(run.info.run_id, "packages.json")
        packages = json.loads(Path(packages_file).read_text())
        assert packages["tensorflow"] == version("tensorflow")
        assert packages["optuna"] == version("optuna")
