"""`python -m sweep.promote [overrides]`: promote the study's best trial, or `registry.run_id`."""

import hydra
from omegaconf import DictConfig

from pipelines.console import exit_unless_done, run_hydra_entry, start_tensorflow


def promote_from_config(cfg: DictConfig):
    """Score the chosen trial's model (its refit, their average and an ensemble, as asked) and
    the champion on the test split; move the alias."""
    import optuna

    from pipelines.errors import ImgsweepError
    from sweep.run import best_trial, promote_trial
    from sweep.session import open_session

    session = open_session(cfg, [], create=False)
    study_name = session.study.study_name
    session.lock.close()
    complete = session.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if cfg.registry.run_id:
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
    else:
        trial = best_trial(session.study)
    if trial is None:
        raise ImgsweepError(
            f"study '{study_name}' has no completed trial to promote; run `make sweep` first"
        )
    return promote_trial(cfg, session, trial)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    start_tensorflow(**cfg.compute)
    from sweep.summary import format_promoted_candidates

    exit_unless_done(lambda: print(format_promoted_candidates(promote_from_config(cfg))))


if __name__ == "__main__":
    run_hydra_entry(main)
