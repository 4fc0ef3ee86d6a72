"""Optuna storage, sampler and pruner from the config; the study created or resumed."""

import re
from pathlib import Path

import optuna

from pipelines.errors import ConfigError, ImgsweepError

FINISHED_STATES = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def storage_url(storage: str | None, mlruns_dir: Path) -> str:
    """The configured storage, or a sqlite file beside the MLflow store."""
    return storage or f"sqlite:///{mlruns_dir / 'optuna.db'}"


def mask_password(url: str) -> str:
    """A storage URL fit for logs and tags: any password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def build_sampler(*, name: str, seed: int, n_startup_trials: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"search.sampler.name {name!r} is unknown; choose tpe or random")


def build_pruner(
    *, name: str, n_startup_trials: int, n_warmup_steps: int
) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        )
    if name == "percentile":
        return optuna.pruners.PercentilePruner(
            25.0, n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(
        f"search.pruner.name {name!r} is unknown; choose median, percentile, hyperband or none"
    )


def open_study(
    *,
    study_name: str,
    storage: str,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> optuna.Study:
    """Create the study, or load it to resume; one clear error if the storage is unusable."""
    # Optuna logs each trial at INFO; the sweep prints its own line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=True,
        )
    except Exception as error:  # SQLAlchemy and driver errors have no common base to name
        message = str(error).splitlines()[0][:300]
        raise ImgsweepError(
            f"search.storage '{mask_password(storage)}' cannot be opened: {message}"
        ) from None


def finished_trial_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
