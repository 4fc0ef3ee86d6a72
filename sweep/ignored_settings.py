"""Sampler and pruner settings a study would silently ignore: a section set for one that is not
the selected one (`search.pruner.median.*` under `search.pruner.name: hyperband`).

A warning, not an error: a space may carry tuned settings for a pruner the user selects from the
command line (`search.pruner.name=median`), and the reverse override, selecting another pruner
for a space that names one, must not stop the study. What it was missing was being told.
"""

from omegaconf import DictConfig, OmegaConf

from pipelines.compose import CONF_DIR

# Lists a section for every sampler and pruner: only what differs from it was set on purpose.
SHARED_STUDY = CONF_DIR / "search" / "shared" / "study.yaml"


def _changed_keys(section: dict, default: dict) -> list[str]:
    return [key for key, value in section.items() if default.get(key, object()) != value]


def ignored_section_lines(search: DictConfig) -> list[str]:
    """One line per sampler or pruner section that differs from the shared defaults but is not
    the selected one, naming its keys."""
    shared = OmegaConf.load(SHARED_STUDY)
    lines = []
    for kind in ("sampler", "pruner"):
        # Unresolved on both sides: `${stages.full.max_epochs}` is the same setting wherever
        # stages.full.max_epochs points.
        sections = OmegaConf.to_container(search[kind], resolve=False)
        defaults = OmegaConf.to_container(shared[kind], resolve=False)
        selected = sections.get("name")
        for name, section in sections.items():
            # Scalars beside the sections (name, and the pruner's resource) are not sections.
            if name == selected or not isinstance(section, dict):
                continue
            keys = _changed_keys(section, defaults.get(name) or {})
            if keys:
                named = ", ".join(f"search.{kind}.{name}.{key}" for key in keys)
                lines.append(
                    f"{named} set, but search.{kind}.name is {selected!r}, so it is ignored; "
                    f"select it with search.{kind}.name={name}, or remove the setting"
                )
    return lines
