"""The two places imgsweep uses Optuna internals, both in sweep/storage.py: trial_heartbeat must
still keep a running trial alive, and a trial whose worker stopped must still go stale with its
reason written first (_StaleReasonStorage overrides RDBStorage._get_stale_trial_ids)."""

import time
import warnings

import optuna

from sweep.storage import build_storage, trial_heartbeat
from sweep.study import open_study

TrialState = optuna.trial.TrialState


def test_the_heartbeat_keeps_a_trial_alive_and_its_end_lets_it_go_stale(tmp_path):
    storage = build_storage(
        f"sqlite:///{tmp_path / 'optuna.db'}",
        heartbeat_interval=1,
        grace_period=2,
        max_retry=0,
        on_stale_trial=lambda study, trial: None,
    )
    study = open_study(
        study_name="heartbeat",
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats are "experimental" in Optuna
        trial = study.ask()
        with trial_heartbeat(study, trial):
            time.sleep(3.5)  # past the grace period: only the heartbeat keeps it running
            optuna.storages.fail_stale_trials(study)
            assert study.get_trials()[0].state == TrialState.RUNNING
        time.sleep(3.5)  # the worker "died": no heartbeat since
        optuna.storages.fail_stale_trials(study)
    (failed,) = study.get_trials()
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["reason"] == (
        "worker died: no heartbeat for 2 s; not run again (search.max_retry=0 reached)"
    )
