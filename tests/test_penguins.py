"""The penguins example: the model's held-out accuracy; the committed model, training split and baseline are
what their commands make; the baseline's categorical frequencies and missing counts equal pandas."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from udfs import baseline_cli
from udfs.baseline import Baseline

from streams import penguin_model

PENGUINS = Path(__file__).resolve().parents[1] / "examples" / "penguins"


@pytest.fixture(scope="module")
def train():
    """The example's model (`streams.penguin_model`; examples/penguins/train.py is its command line)."""
    return penguin_model


def test_held_out_accuracy_is_above_0_9(train):
    _, held_out = train.split(train.read_rows())
    assert len(held_out) == 86 and train.accuracy(train.load(), held_out) > 0.9


def test_committed_model_and_training_csv_are_current(train, tmp_path):
    training, _ = train.split(train.read_rows())
    model, committed = train.fit(training), train.load()
    assert (model["classes"], model["categorical"]) == (committed["classes"], committed["categorical"])
    for key in ("weights", "bias"):
        np.testing.assert_allclose(model[key], committed[key], rtol=1e-9, atol=1e-12)
    train.write_training(committed, training, tmp_path / "training.csv")
    assert (tmp_path / "training.csv").read_text() == (PENGUINS / "training.csv").read_text()


def test_predict_scores_generated_instances(train):
    """Mappings of numbers, strings or None, as a stream generator would make them."""
    rows = [{"island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 15.0, "flipper_length_mm": 217,
             "body_mass_g": 5200, "sex": "male"},
            {"island": "Torgersen", "bill_length_mm": "38.0", "bill_depth_mm": "18.5", "flipper_length_mm": "190",
             "body_mass_g": "3700", "sex": "female"},
            {"island": "Dream", "bill_length_mm": 50.0, "bill_depth_mm": 19.0, "flipper_length_mm": 196,
             "body_mass_g": None, "sex": None},
            {name: None for name in train.FEATURES}]
    predictions = train.predict(train.load(), rows)
    assert predictions[:3] == ["Gentoo", "Adelie", "Chinstrap"] and predictions[3] in train.load()["classes"]


def test_baseline_is_current_with_pandas_frequencies_and_missing_counts(tmp_path):
    committed = Baseline.load(PENGUINS / "baseline.json")
    assert baseline_cli.main([str(PENGUINS / "training.csv"), "--label", "species", "--output-column", "prediction",
                              "--target", "species",
                              "-o", str(tmp_path / "baseline.json")]) == 0
    assert Baseline.load(tmp_path / "baseline.json").fingerprint == committed.fingerprint
    frame = pd.read_csv(PENGUINS / "training.csv")
    assert list(committed.features) == [name for name in frame.columns if name not in ("species", "prediction")]
    for name, column in [("island", frame["island"]), ("sex", frame["sex"]), ("prediction", frame["prediction"])]:
        feature = committed.columns[name]
        assert feature.type == "categorical" and feature.other == 0
        assert dict(zip(feature.categories, feature.counts.tolist())) == column.value_counts().to_dict()
        assert (feature.count, feature.missing) == (column.notna().sum(), column.isna().sum())
    assert committed.features["sex"].missing > 0 and committed.output.name == "prediction"
    body_mass = committed.features["body_mass_g"]
    assert body_mass.type == "numeric" and body_mass.missing == frame["body_mass_g"].isna().sum() == 2
    assert body_mass.mean == pytest.approx(frame["body_mass_g"].mean(), rel=1e-12)
