"""Figures and tables that show a trained model to a person (tracking logs them to MLflow)."""

from pipelines.reports.stage_report import StageReport, build_stage_report

__all__ = ["StageReport", "build_stage_report"]
