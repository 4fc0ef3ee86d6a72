"""What `make sweep` and `make promote` print at the end."""

from collections import Counter

from champion.candidates import PromotedCandidates, format_candidates
from champion.promotion import Promotion
from sweep.objective import describe
from sweep.run import best_trial, study_metric

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
    if result.promotion:
        rows += [
            (
                "test AUC" if result.promotion.gate_split == "test" else "gate val AUC",
                f"{result.promotion.test_metrics['auc']:.4f}",
            ),
            ("registry", f"{result.promotion.model_name} v{result.promotion.version}"),
            ("alias", f"@{result.promotion.alias} ({result.promotion.reason})"),
        ]
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    if result.final:
        lines.append(format_candidates(result.final))
    return "\n".join(lines)
