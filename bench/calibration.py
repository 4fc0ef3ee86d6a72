"""Temperature scaling and decision thresholds on the pair and on ten classes.

    python -m bench.calibration                    # both data sets, 6 epochs, 1000 images/class
    python -m bench.calibration --epochs 3 --per-class 500

A small CNN (conf/model/small_cnn.yaml) trained briefly on each data set (no augmentation, so
it grows over-confident); the temperature fitted on val (pipelines.calibration) and applied
inside the model; ECE (top-label, 15 equal-mass bins) on val and test before and after, and
test AUC/accuracy of the model before and after (which temperature must not change). On the
pair, each threshold rule chosen on val with its test recall and specificity.
"""

import argparse
import time

from pipelines.console import import_tensorflow_quietly

RULES = ("argmax", "youden", "recall:0.95", "specificity:0.9")


def _trained(data_name: str, *, epochs: int, per_class: int):
    from pipelines.config import compose_config
    from pipelines.plan import load_data, plan_from_config
    from pipelines.planned_fit import compiled_model
    from pipelines.train.fit import fit_classifier

    cfg = compose_config([f"data={data_name}", f"data.max_images_per_class={per_class}",
                          "model=small_cnn", "optimizer.learning_rate=0.003"])  # fmt: skip
    plan, data = plan_from_config(cfg), load_data(cfg)
    model = compiled_model(plan, data)
    fit_classifier(model, data=data, train_split=data.splits["train"], val_split=None,
                   epochs=epochs, batch_size=128, seed=0)  # fmt: skip
    return model, data


def _row(name, model, data, scores):
    from pipelines.calibration.ece import expected_calibration_error
    from pipelines.evaluate import roc_auc

    cells = [name]
    for split in ("val", "test"):
        labels, probabilities = scores[split]
        cells.append(f"{expected_calibration_error(labels, probabilities):.4f}")
    labels, probabilities = scores["test"]
    accuracy = (probabilities.argmax(axis=1) == labels).mean()
    cells += [f"{roc_auc(labels, probabilities):.4f}", f"{accuracy:.4f}"]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--per-class", type=int, default=1000)
    args = parser.parse_args()
    import_tensorflow_quietly()
    from bench.studies import machine_line
    from pipelines.calibration.temperature import calibrate_model
    from pipelines.calibration.threshold import parse_rule
    from pipelines.reports.trust_report import decide, split_scores

    print(machine_line())
    print("| data | model | temperature | val ECE | test ECE | test AUC | test accuracy |")
    print("|---|---|---|---|---|---|---|")
    for data_name in ("fashion_pair", "fashion10"):
        started = time.perf_counter()
        model, data = _trained(data_name, epochs=args.epochs, per_class=args.per_class)
        before = split_scores(model, data)
        calibrated, temperature, _, _ = calibrate_model(model, *before["val"][::-1])
        after = split_scores(calibrated, data)
        rows = (("as trained", before, "1"), ("temperature-scaled", after, f"{temperature:.3f}"))
        for label, scores, shown in rows:
            cells = _row(label, model, data, scores)
            print(f"| {data_name} | {cells[0]} | {shown} | " + " | ".join(cells[1:]) + " |")
        if data.num_classes == 2:
            for rule in RULES:
                decision = decide(parse_rule(rule), after)
                print(f"|   {data_name} threshold | {rule} | {decision.threshold:.4f} | "
                      f"test recall {decision.test.recall:.4f} | "
                      f"test specificity {decision.test.specificity:.4f} | | |")  # fmt: skip
        print(
            f"({data_name}: {time.perf_counter() - started:.0f} s, train/val/test images "
            f"{len(data.splits['train'])}/{len(data.splits['val'])}/{len(data.splits['test'])})"
        )


if __name__ == "__main__":
    main()
