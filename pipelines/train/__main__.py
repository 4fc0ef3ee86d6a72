"""`python -m pipelines.train [hydra overrides]`: train one config once, without a study."""

import hydra
from omegaconf import DictConfig

from pipelines.console import exit_unless_done, run_hydra_entry, start_tensorflow


def _report(result) -> None:
    if result.reason:
        print(f"run {result.run_id}: {result.status} ({result.reason})")
        return
    test = "" if result.test_auc is None else f", test AUC {result.test_auc:.4f}"
    print(
        f"run {result.run_id}: val AUC {result.best_val_auc:.4f}{test}; model {result.model_uri}"
    )


@hydra.main(config_path="../../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    start_tensorflow(**cfg.compute)
    from pipelines.single_run import train_once

    exit_unless_done(lambda: _report(train_once(cfg)))


if __name__ == "__main__":
    run_hydra_entry(main)
