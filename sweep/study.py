"""Optuna sampler and pruner from the config; the study created, resumed or joined; which
trials count toward search.n_trials. The storage under it: sweep/storage.py."""

import importlib.util
import warnings

import optuna

from pipelines.errors import ConfigError, ImgsweepError
from pipelines.urls import mask_password
from sweep.pruning import pruner_section_in_steps
from sweep.storage import WORKER_DIED

TrialState = optuna.trial.TrialState
# What is added to the reason of a trial stopped by SIGTERM or Ctrl-C (recorded FAIL with its
# reason, e.g. "stopped by SIGTERM at epoch 4"): its configuration is queued to run again.
RESUMES = "resumes as a new trial"


SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
}
PRUNERS = {
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "none": optuna.pruners.NopPruner,
}


def _construct(kind: str, table: dict, section: dict, **fixed):
    """`table[section["name"]]` called with `section[name]` as keyword arguments (+ `fixed`)."""
    name = section.get("name")
    if name not in table:
        raise ConfigError(
            f"search.{kind}.name {name!r} is unknown; choose one of: {', '.join(table)}"
        )
    settings = dict(section.get(name) or {})
    try:
        with warnings.catch_warnings():
            # multivariate, group and constant_liar are "experimental" since Optuna 2.2.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return table[name](**settings, **fixed)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"search.{kind}.{name}: {error}".splitlines()[0]) from None


def build_sampler(section: dict, *, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler `search.sampler.name` picks, with its section's arguments and `seed`."""
    if section.get("name") == "gp" and importlib.util.find_spec("torch") is None:
        raise ConfigError(
            "search.sampler.name=gp: Optuna's GPSampler needs PyTorch, which is not installed; "
            "pip install torch (the CPU build is enough) or choose tpe or random"
        )
    return _construct("sampler", SAMPLERS, section, seed=seed)


def build_pruner(section: dict) -> optuna.pruners.BasePruner:
    """The pruner `search.pruner.name` picks, with its section's arguments (those that are
    steps converted for `search.pruner.resource`: sweep/pruning.py)."""
    section = pruner_section_in_steps(section)
    pruner = _construct("pruner", PRUNERS, section)
    if section.get("name") == "hyperband":
        # HyperbandPruner checks min_resource and reduction_factor only when it builds its
        # successive-halving brackets, at a trial's first report: a bad value would fail every
        # trial. Building one such bracket now lets Optuna's own check say so before the study.
        rungs = {
            key: value
            for key, value in (section.get("hyperband") or {}).items()
            if key in ("min_resource", "reduction_factor")
        }
        bracket = {"hyperband": optuna.pruners.SuccessiveHalvingPruner}
        _construct("pruner", bracket, {"name": "hyperband", "hyperband": rungs})
    return pruner


def open_study(
    *,
    study_name: str,
    storage: optuna.storages.BaseStorage | str,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    direction: str = "maximize",
    create: bool = True,
) -> optuna.Study:
    """Create the study or load it to resume (`create=False`: it must exist, as for a worker).

    An existing study must have `direction`: its values were compared that way.
    """
    # Optuna logs each trial at INFO; the sweep prints its own line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if create:
            study = optuna.create_study(
                study_name=study_name,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                direction=direction,
                load_if_exists=True,
            )
        else:
            study = optuna.load_study(
                study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
            )
    except KeyError:
        raise ImgsweepError(
            f"search.study_name '{study_name}' does not exist in that storage; start it with "
            "`make sweep` first, or check search.storage and the study name"
        ) from None
    except Exception as error:
        url = storage if isinstance(storage, str) else "the storage"
        message = mask_password(str(error).strip().splitlines()[0])[:300]
        raise ImgsweepError(
            f"search.storage '{mask_password(url)}' cannot be used: {message}"
        ) from None
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"search.metric: study '{study_name}' was created to "
            f"{study.direction.name.lower()} its metric, this one needs {direction}; "
            "choose a new search.study_name"
        )
    return study


def counts_toward_n_trials(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial uses up one of `search.n_trials`.

    Running, waiting and finished trials do; a trial failed because its worker died or because
    a signal stopped it (its retry is queued instead) does not, nor one interrupted before
    stopped trials were retried.
    """
    if trial.state != TrialState.FAIL:
        return True
    reason = trial.user_attrs.get("reason")
    return (
        reason is not None
        and not reason.startswith(WORKER_DIED)
        and not reason.endswith(RESUMES)
        and reason != "interrupted"
    )


def finished_trial_count(study: optuna.Study) -> int:
    return sum(
        counts_toward_n_trials(trial)
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished()
    )
