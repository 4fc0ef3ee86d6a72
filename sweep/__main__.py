"""`python -m sweep [hydra overrides]`: run or resume the study (what `make sweep` calls)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pipelines.console import exit_unless_done, run_hydra_entry, start_tensorflow


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    start_tensorflow(**cfg.compute)
    from sweep.run import run_sweep
    from sweep.summary import format_summary

    overrides = list(HydraConfig.get().overrides.task)
    exit_unless_done(lambda: print(format_summary(run_sweep(cfg, overrides))))


if __name__ == "__main__":
    run_hydra_entry(main)
