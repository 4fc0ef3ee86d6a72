"""`make export`: the champion (or a named version) as SavedModel, ONNX and LiteRT, checked.

python -m champion.export [--model NAME[@ALIAS|/VERSION]] [--formats saved_model,onnx,litert]
    [--latency-calls 200] [hydra overrides, e.g. tracking.mlruns_dir=...]
"""

import argparse
import os
import sys

from pipelines.console import import_tensorflow_quietly, run_command
from pipelines.errors import ImgsweepError

FORMAT_NAMES = ("saved_model", "onnx", "litert")


def parse_formats(text: str) -> list[str]:
    """`--formats a,b` as a list of known format names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMAT_NAMES]
    if unknown or not names:
        raise ImgsweepError(
            f"--formats {text!r}: unknown {', '.join(unknown) or 'empty list'}; choose from "
            f"{','.join(FORMAT_NAMES)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="NAME, NAME@ALIAS or NAME/VERSION (default: registry.model_name@champion)"
    )
    parser.add_argument("--formats", default=",".join(FORMAT_NAMES))
    parser.add_argument(
        "--latency-calls", type=int, default=200, help="single-image calls timed (0: no timing)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the config")
    args = parser.parse_intermixed_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def run() -> None:
        from pipelines.config import compose_config, resolve_path

        formats = parse_formats(args.formats)
        if args.latency_calls < 0:
            raise ImgsweepError(f"--latency-calls {args.latency_calls}: give 0 or more")
        cfg = compose_config(args.overrides)
        import_tensorflow_quietly()
        from champion.export.report import format_export
        from champion.export.version_export import run_export
        from champion.versions import load_served_model, open_registry

        client = open_registry(
            mlruns_dir=resolve_path(cfg.tracking.mlruns_dir),
            tracking_uri=cfg.tracking.tracking_uri,
        )
        served = load_served_model(
            client,
            args.model or cfg.registry.model_name,
            default_alias=cfg.registry.champion_alias,
        )
        result = run_export(
            client,
            served,
            tracking=cfg.tracking,
            formats=formats,
            latency_calls=args.latency_calls,
        )
        print(format_export(result))

    return run_command(run)


if __name__ == "__main__":
    sys.exit(main())
