"""The penguins example's model: a multinomial logistic regression of the species, numpy only.

Inputs: the four measurements, standardised with the training split's mean and sample std (a missing
value is imputed by the training mean, 0 once standardised), and ``island`` and ``sex`` one-hot over
the training split's categories (a missing or never-seen value: all zeros). Fitted by full-batch
gradient descent on the mean cross-entropy plus a small L2 penalty, from zeros: deterministic.

Run as ``python examples/penguins/train.py`` (or ``python -m streams.penguin_model``) it splits ``penguins.csv`` (seeded: a quarter held out), fits the training split, prints
both accuracies and writes ``model.json`` (the parameters, read by `load`) and ``training.csv`` (the
training split's features as the original cells, the ``species`` label and the model's ``prediction``),
from which the example's baseline is built::

    python examples/penguins/train.py
    mmon baseline examples/penguins/training.csv --label species --output-column prediction --target species \\
        -o examples/penguins/baseline.json

`predict` takes rows as mappings from feature name to value (CSV strings, numbers, or None), so it scores
generated instances as well as the CSV's rows.
"""
from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent.parent / "examples" / "penguins"  # the example's data and model
NUMERIC = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
CATEGORICAL = ("island", "sex")
FEATURES = ("island", *NUMERIC, "sex")  # the CSV's order
LABEL, PREDICTION = "species", "prediction"
MISSING = ("", "NA")
SEED = 20_25
HELD_OUT = 0.25
STEPS, LEARNING_RATE, L2 = 3000, 0.5, 1e-3

Row = Mapping[str, object]


def read_rows(path: Path = HERE / "penguins.csv") -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def split(rows: Sequence[Row], seed: int = SEED) -> tuple[list[Row], list[Row]]:
    """(training, held-out): a seeded permutation, the last ``HELD_OUT`` share held out."""
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = round(len(rows) * (1 - HELD_OUT))
    return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]


def _number(value: object) -> float:
    """A float, NaN for a missing value (None, empty, NA, NaN)."""
    if value is None or (isinstance(value, str) and value.strip() in MISSING):
        return math.nan
    return float(value)


def _category(value: object) -> Optional[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return None if text.strip() in MISSING else text


def _numeric_columns(rows: Sequence[Row]) -> np.ndarray:
    return np.array([[_number(row.get(name)) for name in NUMERIC] for row in rows], dtype=float).reshape(-1, len(NUMERIC))


def encode(model: Mapping, rows: Sequence[Row]) -> np.ndarray:
    """The design matrix: standardised measurements (missing: 0), then each categorical one-hot."""
    scale = model["numeric"]
    numbers = _numeric_columns(rows)
    standard = (numbers - [scale[n]["mean"] for n in NUMERIC]) / [scale[n]["std"] for n in NUMERIC]
    one_hot = [[_category(row.get(name)) == level for name in CATEGORICAL for level in model["categorical"][name]]
               for row in rows]
    return np.column_stack([np.nan_to_num(standard, nan=0.0), np.array(one_hot, dtype=float).reshape(len(rows), -1)])


def _probabilities(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit(rows: Sequence[Row]) -> dict:
    """The model (JSON-ready) fitted on ``rows``, which hold the features and the ``species`` label."""
    numbers = _numeric_columns(rows)
    model = {
        "classes": sorted({str(row[LABEL]) for row in rows}),
        "numeric": {name: {"mean": float(np.nanmean(column)), "std": float(np.nanstd(column, ddof=1))}
                    for name, column in zip(NUMERIC, numbers.T)},
        "categorical": {name: sorted({c for c in (_category(row.get(name)) for row in rows) if c is not None})
                        for name in CATEGORICAL},
    }
    x = encode(model, rows)
    y = np.array([[str(row[LABEL]) == c for c in model["classes"]] for row in rows], dtype=float)
    weights, bias = np.zeros((x.shape[1], y.shape[1])), np.zeros(y.shape[1])
    for _ in range(STEPS):
        error = (_probabilities(x @ weights + bias) - y) / len(rows)
        weights -= LEARNING_RATE * (x.T @ error + L2 * weights)
        bias -= LEARNING_RATE * error.sum(axis=0)
    return {**model, "weights": weights.tolist(), "bias": bias.tolist()}


def predict(model: Mapping, rows: Sequence[Row]) -> list[str]:
    """The predicted species of each row."""
    logits = encode(model, rows) @ np.asarray(model["weights"]) + np.asarray(model["bias"])
    return [model["classes"][i] for i in logits.argmax(axis=1)]


def accuracy(model: Mapping, rows: Sequence[Row]) -> float:
    return float(np.mean([p == row[LABEL] for p, row in zip(predict(model, rows), rows)]))


def load(path: Path = HERE / "model.json") -> dict:
    return json.loads(Path(path).read_text())


def write_training(model: Mapping, rows: Sequence[Mapping[str, str]], path: Path) -> None:
    """The training split's feature cells as read, the label, and the model's prediction."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FEATURES, LABEL, PREDICTION])
        for row, prediction in zip(rows, predict(model, rows)):
            writer.writerow([*(row[name] for name in FEATURES), row[LABEL], prediction])


def main() -> int:
    training, held_out = split(read_rows())
    model = fit(training)
    (HERE / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    write_training(model, training, HERE / "training.csv")
    print(f"{len(training)} training rows: accuracy {accuracy(model, training):.3f}; "
          f"{len(held_out)} held out: accuracy {accuracy(model, held_out):.3f}")
    print(f"wrote {HERE / 'model.json'} and {HERE / 'training.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
