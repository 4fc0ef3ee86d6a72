"""`make export`'s summary: per format its parity, latency and artifact, or why it has none."""

from champion.export.latency import Latency
from champion.export.parity import TOLERANCE
from champion.export.version_export import ARTIFACT_FOLDER, VersionExport


def _latency_cells(latency: Latency | None) -> str:
    if latency is None:
        return f"{'-':>7} {'-':>7} {'-':>11}"
    return f"{latency.p50_ms:>7.2f} {latency.p99_ms:>7.2f} {latency.images_per_second:>11.0f}"


def format_export(result: VersionExport) -> str:
    """One line per format, Keras first as the reference; failures say why."""
    served = result.served
    lines = [
        f"model: {served.name} v{served.version}; checked on its {result.split} split "
        f"({result.images} images) against Keras, tolerance {TOLERANCE:g}",
        f"  {'format':<13} {'max |dp|':>9} {'agree':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'batch img/s':>11}  artifact",
        f"  {'Keras':<13} {'-':>9} {'-':>7} {_latency_cells(result.latencies.get('keras'))}"
        "  (the registered model)",
    ]
    for check in result.checks:
        name = check.format.name
        difference = "-" if check.max_abs_diff is None else f"{check.max_abs_diff:.1e}"
        agreement = "-" if check.agreement is None else f"{check.agreement:.4f}"
        where = (
            f"{ARTIFACT_FOLDER}/{check.format.artifact}"
            if check.usable
            else f"none: {check.reason}"
        )
        lines.append(
            f"  {check.format.label:<13} {difference:>9} {agreement:>7} "
            f"{_latency_cells(result.latencies.get(name))}  {where}"
        )
    usable = sum(check.usable for check in result.checks)
    lines.append(
        f"{usable} of {len(result.checks)} formats logged under {ARTIFACT_FOLDER}/ of run "
        f"{result.run_id}; figures on the version as export_* tags"
    )
    if result.latencies:
        lines.append(
            "latency: single-image calls in this process, batches of "
            f"{next(iter(result.latencies.values())).batch_size}; on a busy machine they vary"
        )
    return "\n".join(lines)
