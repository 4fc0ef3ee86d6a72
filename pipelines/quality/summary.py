"""What the console shows of a report: a summary line, and the leakage warning."""

from collections import Counter

from pipelines.quality.check import QualityReport
from pipelines.quality.duplicates import relative_name

SHOWN_FILES = 3


def summary_line(report: QualityReport, *, cached: bool) -> str:
    """One line: copies across and within splits, likely wrong labels, odd images, time."""
    odd = len((report.images or {}).get("odd_images", []))
    checked = report.label_checked_images
    share = 100 * len(report.label_issues) / max(checked, 1)
    timing = "read back from the cache" if cached else f"{report.total_seconds:.0f} s"
    return (
        f"data quality: {len(report.cross_split())} copies across splits, "
        f"{len(report.within_split())} within splits, {len(report.label_issues)} likely wrong "
        f"train labels ({share:.1f} % of {checked:,} checked), {odd} odd images ({timing})"
    )


def _pair_text(pair: dict) -> str:
    return (
        f"{pair['split_a']}/{relative_name(pair['file_a'])} = "
        f"{pair['split_b']}/{relative_name(pair['file_b'])}"
    )


def leak_warning(report: QualityReport) -> str | None:
    """The warning for images found in two splits (None if there are none)."""
    cross = report.cross_split()
    if not cross:
        return None
    kinds = Counter(f"{pair['split_a']}-{pair['split_b']}" for pair in cross)
    counts = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    examples = "; ".join(_pair_text(pair) for pair in cross[:SHOWN_FILES])
    return (
        f"{len(cross)} images are copies across splits ({counts}), e.g. {examples}: scores on "
        "val/test are inflated; data.quality.drop_leaks=true trains without the train-side "
        "copies (duplicates.csv in the report lists them all)"
    )


def console_lines(report: QualityReport, *, cached: bool, report_path: str) -> list[str]:
    """The summary, notes and warning as printed by `make data-report` and `make sweep`."""
    lines = [summary_line(report, cached=cached)]
    lines += [f"data quality: note: {note}" for note in report.notes]
    warning = leak_warning(report)
    if warning:
        lines.append(f"imgsweep: warning: {warning}")
    lines.append(f"data quality: report {report_path}")
    return lines
