"""The report for loaded data: its checks run once per data fingerprint, its files written."""

from pathlib import Path

from pipelines.data.datasets import ImageFolderData
from pipelines.quality.check import QualityReport, cached_report
from pipelines.quality.report import write_report_files
from pipelines.quality.settings import QualitySettings


def data_quality_report(
    data: ImageFolderData, settings: QualitySettings, *, cache_dir: Path, title: str
) -> tuple[QualityReport, Path, bool]:
    """(report, folder with report.html and CSVs, whether it was cached) for `data`."""
    return cached_report(
        data,
        settings,
        cache_dir=cache_dir,
        write_files=lambda report, folder: write_report_files(report, folder, title=title),
    )
