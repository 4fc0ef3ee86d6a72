"""The candidates side by side as the sweep's summary prints them."""

from champion.candidates import PromotedCandidates
from champion.promotion import GATE_METRICS


def format_candidates(final: PromotedCandidates) -> str:
    """The candidates side by side, which took the alias, and the champion's predict speed."""
    promotion = final.promotion
    label = GATE_METRICS[promotion.metric]
    lines = [f"candidates ({promotion.gate_split} split; the gate compares {label}):"]
    width = max(len(candidate.description) for candidate in final.candidates)
    kind_width = max(len(candidate.kind) for candidate in final.candidates)
    chosen = None
    for candidate in final.candidates:
        mark = ""
        if candidate.version == promotion.version:
            chosen, mark = candidate, f"  -> @{promotion.alias}"
        lines.append(
            f"  {candidate.kind:<{kind_width}} {candidate.description:<{width}}  "
            f"AUC {candidate.test_metrics['auc']:.4f}  "
            f"accuracy {candidate.test_metrics['accuracy']:.4f}  v{candidate.version}{mark}"
        )
    lines += [f"  {note}" for note in final.notes]
    if chosen is not None:
        cost = (
            f"; an average of {chosen.members} models costs about {chosen.members}x one"
            if chosen.members > 1
            else ""
        )
        lines.append(
            f"  v{chosen.version} predicts about {chosen.images_per_second:.0f} img/s here "
            f"({promotion.gate_split} split, batches of 256){cost}"
        )
    return "\n".join(lines)
