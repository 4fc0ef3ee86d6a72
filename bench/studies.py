"""Run a whole imgsweep study in this process and read back what the benchmarks report.

Each trial's time is when it ended, counted from just before `run_sweep` was called (so
opening the study and loading the data count too); its full-data epochs are the epochs it
reported to the pruner, one per epoch of the full stage.
"""

import csv
import platform
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str
    value: float | None
    seconds: float
    full_epochs: int
    params: dict
    reason: str | None
    # The trial's sampled Hydra overrides: to run the same configuration again.
    overrides: list[str]
    # The trial's MLflow run (its stages' runs are nested under it).
    run_id: str | None = None


@dataclass
class StudyRecord:
    label: str
    overrides: list[str]
    wall_seconds: float
    trials: list[TrialRecord]
    # The sweep's promotion (champion.promotion.Promotion), when registry.promote_after_sweep.
    promotion: object | None = None
    # The candidates the gate chose among (champion.candidates.PromotedCandidates).
    final: object | None = None
    # The study's metric (search.metric resolved) and whether more of it is better.
    metric: str = "val_auc"
    maximize: bool = True
    # time.time() just before run_sweep, and when the first trial started (the trial loop and
    # its budget start then): wall-clock times, as MLflow's metric timestamps are.
    started_unix: float = 0.0
    search_started_unix: float | None = None

    @property
    def complete(self) -> list[TrialRecord]:
        return [trial for trial in self.trials if trial.value is not None]

    @property
    def best(self) -> TrialRecord | None:
        pick = max if self.maximize else min
        return pick(self.complete, key=lambda trial: trial.value, default=None)

    def reaches(self, value: float, target: float, *, within: float = 0.0) -> bool:
        """Whether `value` is at least as good as `target` (less `within`) in this direction."""
        return value >= target - within if self.maximize else value <= target + within

    def timeline(self) -> list[tuple[float, float]]:
        """(seconds, value) of each complete trial, values signed so that more is better."""
        sign = 1 if self.maximize else -1
        return [(trial.seconds, sign * trial.value) for trial in self.complete]

    @property
    def full_epochs(self) -> int:
        return sum(trial.full_epochs for trial in self.trials)

    def count(self, state: str) -> int:
        return sum(trial.state == state for trial in self.trials)

    def stopped_by(self, reason_prefix: str) -> int:
        return sum((trial.reason or "").startswith(reason_prefix) for trial in self.trials)


def first_reached(timeline: list[tuple[float, float]], target: float) -> float | None:
    """The first time in (seconds, value) pairs at which value >= target; None if never."""
    return next((seconds for seconds, value in sorted(timeline) if value >= target), None)


def _first_trial_start(study, *, since: datetime) -> float | None:
    """When this run's first trial started, as time.time() would say; None without one."""
    starts = [
        trial.datetime_start
        for trial in study.get_trials(deepcopy=False)
        if trial.datetime_start is not None and trial.datetime_start >= since
    ]
    return min(starts).timestamp() if starts else None


def budgeted_study_overrides(study_name: str, minutes: float, mlruns_dir: Path) -> list[str]:
    """A study that the wall clock ends, in its own store, with nothing promoted."""
    return [
        "search.n_trials=100000",  # the budget decides
        f"search.timeout_minutes={minutes}",
        f"search.study_name={study_name}",
        f"tracking.mlruns_dir={mlruns_dir}",
        "registry.promote_after_sweep=false",
    ]


def run_study(label: str, overrides: list[str]) -> StudyRecord:
    """Compose the config from `overrides`, run the study to its end, return its record."""
    import optuna

    from pipelines.config import compose_config
    from pipelines.train.device import configure_compute
    from sweep.run import run_sweep

    cfg = compose_config(overrides)
    configure_compute(**cfg.compute)
    started_at = datetime.now()  # Optuna stamps trials with naive local times
    started_unix = time.time()
    started = time.perf_counter()
    result = run_sweep(cfg, overrides)
    wall_seconds = time.perf_counter() - started
    trials = [
        TrialRecord(
            number=trial.number,
            state=trial.state.name,
            value=trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
            seconds=(trial.datetime_complete - started_at).total_seconds(),
            # Epochs the full stage ran, as the objective recorded them.
            full_epochs=trial.user_attrs.get("full_epochs", len(trial.intermediate_values)),
            params=dict(trial.params),
            reason=trial.user_attrs.get("reason"),
            overrides=list(trial.user_attrs.get("overrides", [])),
            run_id=trial.user_attrs.get("mlflow_run_id"),
        )
        for trial in result.study.get_trials(deepcopy=False)
        if trial.datetime_complete is not None
    ]
    return StudyRecord(
        label,
        list(overrides),
        wall_seconds,
        trials,
        result.promotion,
        result.final,
        metric=result.study.user_attrs.get("metric", "val_auc"),
        maximize=result.study.direction == optuna.study.StudyDirection.MAXIMIZE,
        started_unix=started_unix,
        search_started_unix=_first_trial_start(result.study, since=started_at),
    )


# Reason prefixes of the sanity gates (a StageStopped reason starts with its stage).
GATE_STOPS = ("ablation", "overfit")


def false_stops(record: StudyRecord, *, within: float = 0.01) -> list[int]:
    """Trials a gate stopped whose configuration, trained again with the gates off, reaches
    within `within` of the study's best value: the gate threw a contender away. A study with
    no complete trial is measured against the best re-run.

    Each re-run is one full stage (no pruner), outside the study and its budget.
    """
    from pipelines.config import compose_config
    from pipelines.plan import load_data, plan_from_config, tracking_from_config
    from pipelines.stages import StageStopped, run_stages
    from pipelines.tracking import RunStatus

    rerun = {}
    for trial in record.trials:
        if not (trial.reason or "").startswith(GATE_STOPS):
            continue
        cfg = compose_config(
            [
                *record.overrides,
                *trial.overrides,
                "stages.ablation.enabled=false",
                "stages.overfit.enabled=false",
            ]
        )
        plan, tracker = plan_from_config(cfg), tracking_from_config(cfg)
        parent = tracker.start_run(f"false-stop-check-{trial.number}")
        try:
            result = run_stages(
                plan=plan,
                data=load_data(cfg),
                tracker=tracker,
                parent_run_id=parent,
                checkpoint_path=plan.checkpoint_dir / f"recheck-{trial.number}.keras",
            )
        except StageStopped:
            continue
        finally:
            tracker.end_run(parent, RunStatus.FINISHED)
        rerun[trial.number] = result.best_value
    pick = max if record.maximize else min
    best = record.best.value if record.best else pick(rerun.values(), default=None)
    return [
        number for number, value in rerun.items() if record.reaches(value, best, within=within)
    ]


def test_metrics_of_best(record: StudyRecord) -> dict[str, float]:
    """Test AUC and accuracy of the study's best trial, from its best-epoch checkpoint."""
    import keras

    from pipelines.config import compose_config
    from pipelines.evaluate import evaluate_split
    from pipelines.plan import load_data, plan_from_config

    cfg = compose_config(record.overrides)
    checkpoint = plan_from_config(cfg).checkpoint_dir / (
        f"{cfg.search.study_name}-{record.best.number}.keras"
    )
    data = load_data(cfg)
    return evaluate_split(keras.saving.load_model(checkpoint), data, data.splits["test"])


def machine_line() -> str:
    """Cores, CPU model and GPU (if TensorFlow sees one): the line every table starts with."""
    import os

    import tensorflow as tf

    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpus = tf.config.list_physical_devices("GPU")
    gpu = ", ".join(
        tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
    )
    return (
        f"{datetime.now():%Y-%m-%d %H:%M}  {os.cpu_count()} cores ({cpu}), "
        f"GPU: {gpu or 'none'}, TensorFlow {tf.__version__}"
    )


def write_csv(name: str, rows: list[dict]) -> Path:
    """rows as bench/results/<name>.csv (columns from the first row); returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.csv"
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def trial_rows(record: StudyRecord) -> list[dict]:
    """One CSV row per trial, labelled with the study."""
    return [{"study": record.label, **asdict(trial)} for trial in record.trials]
