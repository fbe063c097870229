"""`streams.canary`: the stable version and the canary side by side, every message naming its version."""
import json

import numpy as np
import pytest

from contract import formats

from streams import canary, penguin_model, penguins


@pytest.fixture(scope="module")
def stream() -> canary.CanaryStream:
    return canary.generate(stage_size=400)


def test_the_canary_serves_its_share_of_the_canary_stages_only(stream):
    on_canary = stream.version == canary.CANARY
    for number, kind in enumerate(canary.STAGE_KINDS, start=1):
        share = on_canary[stream.stage == number].mean()
        if kind == "canary":
            assert share == pytest.approx(canary.CANARY_SHARE, abs=0.06)
        else:
            assert share == 0


def test_the_canary_never_predicts_the_dropped_class_and_is_less_accurate(stream):
    predictions = np.array(stream.predictions, dtype=object)
    on_canary = stream.version == canary.CANARY
    assert canary.DROPPED_CLASS not in set(predictions[on_canary])
    assert canary.DROPPED_CLASS in set(predictions[~on_canary])
    assert stream.accuracy(canary.STABLE) > 0.97
    assert stream.accuracy(canary.CANARY) < stream.accuracy(canary.STABLE) - 0.1


def test_an_identical_canary_answers_as_the_stable_model():
    identical = canary.generate(stage_size=400, canary="identical")
    model = penguin_model.load(penguins.DEFAULT_MODEL)
    rows = [json.loads(line)["data"]["instances"][0] for line in identical.lines
            if json.loads(line)["type"] == formats.CLOUDEVENT_REQUEST_TYPE]
    assert list(identical.predictions) == penguin_model.predict(model, rows)


@pytest.mark.parametrize("format", formats.FORMATS)
def test_every_message_names_its_version_where_its_format_says(format):
    small = canary.generate(stage_size=60, format=format)
    version_of = dict(zip(small.ids.tolist(), small.version.tolist()))
    for line in small.lines:
        message = json.loads(line)
        assert formats.version_of(format, message) == version_of[message["id"]]
    assert len(small.lines) == 3 * len(small)  # a request, its response and its label each


def test_one_seed_one_stream():
    assert canary.generate(stage_size=50).lines == canary.generate(stage_size=50).lines
