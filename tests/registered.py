"""A model registered in a real MLflow store under tmp, as promotion leaves one, for predict."""

import keras
from omegaconf import OmegaConf

from champion.registration import registered_version
from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.models import build_model
from pipelines.plan import plan_from_config, tracking_from_config
from pipelines.provenance import log_run_inputs
from pipelines.tracking import RunStatus


def register_champion(cfg, model: keras.Model, data: ImageFolderData, tags: dict) -> str:
    """Log `model` with its run's config and classes, register it, tag it, make it champion."""
    tracker = tracking_from_config(cfg)
    run_id = tracker.start_run("registered")
    log_run_inputs(tracker, run_id, config_yaml=OmegaConf.to_yaml(cfg, resolve=True), data=data)
    sample = next(iter(build_batches(data, data.splits["val"], batch_size=4)))[0].numpy()
    model_uri = tracker.log_keras_model(run_id, model, sample)
    tracker.end_run(run_id, RunStatus.FINISHED)
    threshold = tags.get("decision_threshold")
    version = registered_version(
        tracker,
        cfg.registry.model_name,
        model_uri,
        run_id,
        threshold=None if threshold is None else float(threshold),
    )
    tracker.set_version_tags(cfg.registry.model_name, version.version, tags)
    tracker.set_alias(cfg.registry.model_name, cfg.registry.champion_alias, version.version)
    return str(version.version)


def untrained_model(cfg, data: ImageFolderData) -> keras.Model:
    """The config's model, freshly built (seeded): its outputs vary enough to cut at any point."""
    plan = plan_from_config(cfg)
    keras.utils.set_random_seed(0)
    return build_model(
        name=plan.model_name, input_shape=data.input_shape, num_classes=data.num_classes,
        preprocessing=plan.preprocessing, **plan.model_settings,
    )  # fmt: skip
