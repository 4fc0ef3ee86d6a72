"""`make worker` / `python -m sweep.worker [overrides]`: join an existing study and run trials."""

import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pipelines.console import exit_unless_done, run_hydra_entry, start_tensorflow


def join_study(cfg: DictConfig, overrides: list[str]) -> int:
    """Run trials of `search.study_name` until the study holds `search.n_trials`."""
    from sweep.loop import format_outcome
    from sweep.quality import leave_out_flagged_train_files, worker_budget_after_report
    from sweep.session import open_session
    from sweep.study_open import WORKER_INDEX_VARIABLE

    session = open_session(cfg, overrides, create=False)
    worker_budget_after_report(session)
    leave_out_flagged_train_files(cfg, session)
    name = f"worker {os.environ.get(WORKER_INDEX_VARIABLE) or os.getpid()}"
    try:
        return session.run_trials(
            lambda trial, outcome, seconds: print(
                f"[{name}] {format_outcome(trial, outcome, seconds)}", flush=True
            )
        )
    finally:
        session.lock.close()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    start_tensorflow(**cfg.compute)
    overrides = list(HydraConfig.get().overrides.task)
    exit_unless_done(lambda: join_study(cfg, overrides))


if __name__ == "__main__":
    run_hydra_entry(main)
