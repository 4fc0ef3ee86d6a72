"""`python -m sweep.promote [overrides]`: promote the study's best trial, or `registry.run_id`."""

import sys

import hydra
from omegaconf import DictConfig, open_dict

from pipelines.console import run_command, start_tensorflow


def promote_from_config(cfg: DictConfig):
    """Score the chosen trial's model and the champion on the test split; move the alias."""
    import optuna

    from pipelines.config import resolve_path
    from pipelines.errors import ImgsweepError
    from pipelines.plan import load_data, plan_from_config
    from pipelines.tracking import connect_tracking
    from sweep.run import promote_trial
    from sweep.study import open_study, storage_url

    plan_from_config(cfg)
    mlruns_dir = resolve_path(cfg.tracking.mlruns_dir)
    study_name = cfg.search.study_name
    tracker = connect_tracking(
        mlruns_dir=mlruns_dir,
        tracking_uri=cfg.tracking.tracking_uri,
        experiment_name=cfg.tracking.experiment_name or study_name,
    )
    study = open_study(
        study_name=study_name,
        storage=storage_url(cfg.search.storage, mlruns_dir),
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.NopPruner(),
    )
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if cfg.registry.get("run_id"):
        chosen = [
            trial
            for trial in complete
            if trial.user_attrs.get("mlflow_run_id") == cfg.registry.run_id
        ]
        if not chosen:
            raise ImgsweepError(
                f"registry.run_id '{cfg.registry.run_id}' is not a completed trial run of study "
                f"'{study_name}'; copy a trial run id from the MLflow UI"
            )
        trial = chosen[0]
    elif complete:
        trial = max(complete, key=lambda candidate: candidate.value)
    else:
        raise ImgsweepError(
            f"study '{study_name}' has no completed trial to promote; run `make sweep` first"
        )
    return promote_trial(cfg, tracker, load_data(cfg), trial, study_name)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    start_tensorflow(**cfg.compute)
    from sweep.summary import format_promotion

    with open_dict(cfg.registry):
        cfg.registry.setdefault("run_id", None)
    exit_code = run_command(lambda: print(format_promotion(promote_from_config(cfg))))
    if exit_code:
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
