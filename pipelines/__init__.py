"""imgsweep's training pipeline: config → data → model → train → tracking; no study in it."""

# Registers the config's resolvers (`${data_name:...}`) before any entry point composes it.
import pipelines.compose  # noqa: E402, F401
