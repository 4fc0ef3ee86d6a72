"""What `make sweep` and `make promote` print at the end."""

from collections import Counter

from champion.candidates import PromotedCandidates
from champion.candidates_table import format_candidates
from champion.promotion import Promotion
from sweep.objective import describe
from sweep.run import best_trial, study_metric
from sweep.sizing import EPOCH_CAP_ATTR, REFERENCE_ATTR, SIZING_ATTR
from sweep.study import finished_trial_count

STAGES = ("ablation", "overfit", "full")


def format_promotion(promotion: Promotion) -> str:
    return (
        f"registry: {promotion.model_name} v{promotion.version} -> @{promotion.alias} "
        f"({promotion.gate_split} AUC {promotion.test_metrics['auc']:.4f}; {promotion.reason})"
    )


def format_promoted_candidates(final: PromotedCandidates) -> str:
    """`make promote`'s output: the gate's decision, then the candidates side by side."""
    return f"{format_promotion(final.promotion)}\n{format_candidates(final)}"


def budget_line(study) -> str:
    """How the study's time went: full-set epochs, and seconds in each stage (all trials)."""
    trials = study.get_trials(deepcopy=False)
    epochs = sum(trial.user_attrs.get("full_epochs", 0) for trial in trials)
    seconds = {
        stage: sum(trial.user_attrs.get(f"{stage}_seconds", 0.0) for trial in trials)
        for stage in STAGES
    }
    report = study.user_attrs.get("data_report_seconds")  # sweep/quality.py
    gradcam = sum(trial.user_attrs.get("gradcam_seconds", 0.0) for trial in trials)
    return (
        f"budget: {epochs} full-set epochs; "
        + ", ".join(f"{seconds[stage]:.0f} s {stage}" for stage in STAGES)
        + f" (of which {gradcam:.1f} s Grad-CAM)"
        + (f", {report:.0f} s data report" if report is not None else "")
    )


def _by_state(trials) -> str:
    counts = Counter(trial.state.name.lower() for trial in trials)
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items())) or "none"


def trials_held_line(study) -> str | None:
    """How many trials the budget held, queued and sampled, and why the study stopped there
    (the sizing a new study records, sweep/sizing.py); None for a study made before it."""
    record = study.user_attrs.get(SIZING_ATTR)
    if record is None:
        return None
    finished = [trial for trial in study.get_trials(deepcopy=False) if trial.state.is_finished()]
    queued = [trial for trial in finished if "enqueued_by" in trial.user_attrs]
    sampled = [trial for trial in finished if "enqueued_by" not in trial.user_attrs]
    caps = [
        trial.user_attrs[EPOCH_CAP_ATTR] for trial in queued if EPOCH_CAP_ATTR in trial.user_attrs
    ]
    capped = f"; {len(caps)} capped at {'/'.join(map(str, caps))} epochs" if caps else ""
    if finished_trial_count(study) >= record["n_trials"]:
        why = f"search.n_trials ({record['n_trials']}) reached"
    elif record["loop_seconds"] is not None:
        why = (
            f"the trial loop's {record['loop_seconds'] / 60:.1f} min ran out (planned: "
            f"{record['sampled_seconds'] / 60:.1f} min of sampled trials)"
        )
    else:
        why = "stopped before search.n_trials"
    reference = study.user_attrs.get(REFERENCE_ATTR)
    epoch = f"; one full-stage epoch here: {reference:.1f} s" if reference else ""
    return (
        f"trials held: {len(queued)} queued ({_by_state(queued)}{capped}), {len(sampled)} "
        f"sampled ({_by_state(sampled)}); {why}{epoch}"
    )


def format_summary(result) -> str:
    """The best trial, its parameters and scores, and where its model went."""
    study = result.study
    counts = Counter(trial.state.name for trial in study.get_trials(deepcopy=False))
    lines = [
        f"study '{study.study_name}': "
        + ", ".join(f"{count} {state.lower()}" for state, count in sorted(counts.items()))
        + f" ({result.trials_run} run now); MLflow parent run {result.parent_run_id}",
        budget_line(study),
    ]
    held = trials_held_line(study)
    if held:
        lines.append(held)
    best = best_trial(study)
    if best is None:
        lines.append("no trial completed: see each trial's reason above or in MLflow")
        return "\n".join(lines)
    rows = [
        ("best trial", str(best.number)),
        ("parameters", describe(best.params)),
        (study_metric(study), f"{best.value:.4f}"),
        ("MLflow run", best.user_attrs.get("mlflow_run_id", "")),
    ]
    promotion = result.promotion
    if promotion:
        # The version the gate judged need not be the best trial's model: name what it is.
        candidates = result.final.candidates if result.final else []
        kinds = {candidate.version: candidate.kind for candidate in candidates}
        kind = f" ({kinds[promotion.version]})" if promotion.version in kinds else ""
        rows += [
            ("registry", f"{promotion.model_name} v{promotion.version}{kind}"),
            (
                "test AUC" if promotion.gate_split == "test" else "gate val AUC",
                f"{promotion.test_metrics['auc']:.4f}",
            ),
            ("alias", f"@{promotion.alias} ({promotion.reason})"),
        ]
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    if result.final:
        lines.append(format_candidates(result.final))
    return "\n".join(lines)
