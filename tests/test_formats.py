"""The wire formats: exact encodings, round trips, and every dead-letter reason."""
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import formats
from contract import spec as config
from contract.formats import FormatError, decode, encode

T_MS = 1_763_767_500_123  # 2025-11-21T23:25:00.123Z
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_formats_match_the_spec_choices():
    assert formats.FORMATS == config.INPUT_FORMATS


def test_thesis_encoding_is_exact():
    assert encode("thesis", "req-1", T_MS, [ROWS[0]]) == (
        '{"type":"request","id":"req-1","time":1763767500123,"payload":{"instances":[[5.1,3.5,1.4,0.2]]}}')


def test_kserve_v1_is_a_cloudevent_with_millisecond_utc_time():
    event = json.loads(encode("kserve-v1", "req-1", T_MS, ROWS, source="http://iris.models/predictor"))
    assert event == {"specversion": "1.0", "id": "req-1", "source": "http://iris.models/predictor",
                     "type": "org.kubeflow.serving.inference.request", "time": "2025-11-21T23:25:00.123Z",
                     "datacontenttype": "application/json", "data": {"instances": ROWS}}
    stamp = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert round(stamp.timestamp() * 1000) == T_MS


def test_oip_v2_flattens_row_major():
    request = json.loads(encode("oip-v2", "req-1", T_MS, ROWS))
    assert request == {"id": "req-1", "parameters": {"time": T_MS},
                       "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                                   "data": ROWS[0] + ROWS[1]}]}


def test_encode_is_compact_and_rejects_nan():
    assert " " not in encode("oip-v2", "a", T_MS, ROWS)
    with pytest.raises(ValueError):
        encode("thesis", "a", T_MS, [[float("nan"), 1.0]])
    with pytest.raises(ValueError, match="unknown format"):
        encode("csv", "a", T_MS, ROWS)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(formats.FORMATS),
       request_id=st.text(min_size=1, max_size=20),
       time_ms=st.integers(min_value=1, max_value=253_402_300_799_999),  # up to 9999-12-31
       width=st.integers(1, 6), data=st.data())
def test_every_format_round_trips(fmt, request_id, time_ms, width, data):
    if time_ms < formats.SECONDS_THRESHOLD and fmt != "kserve-v1":
        time_ms += int(formats.SECONDS_THRESHOLD)  # numeric times this small are read as seconds
    rows = data.draw(st.lists(st.lists(finite, min_size=width, max_size=width), min_size=1, max_size=5))
    parsed = decode(fmt, encode(fmt, request_id, time_ms, rows), n_features=width)
    assert parsed == (request_id, time_ms, rows)


def test_decode_accepts_bytes_and_thesis_seconds():
    raw = b'{"type":"request","id":"x","time":1763767500,"payload":{"instances":[[1,2]]}}'
    assert decode("thesis", raw) == ("x", 1_763_767_500_000, [[1.0, 2.0]])
    assert formats.time_to_ms(1_763_767_500.25) == 1_763_767_500_250
    assert formats.time_to_ms(1_763_767_500_250) == 1_763_767_500_250


def test_plain_kserve_body_takes_id_and_time_from_defaults():
    parsed = decode("kserve-v1", '{"instances":[[1.5,2]]}', default_id="key-7", default_time_ms=42)
    assert parsed == ("key-7", 42, [[1.5, 2.0]])


def test_cloudevent_time_zones_and_fractions():
    def at(stamp):
        event = json.loads(encode("kserve-v1", "a", T_MS, ROWS))
        event["time"] = stamp
        return decode("kserve-v1", json.dumps(event)).time_ms
    assert at("2025-11-21T23:25:00.123Z") == T_MS
    assert at("2025-11-22T00:25:00.1239+01:00") == T_MS  # truncated, not rounded
    assert at("2025-11-21T23:25:00Z") == T_MS - 123
    assert at("2025-11-21t23:25:00.12z") == T_MS - 3


def _thesis(**overrides):
    message = {"type": "request", "id": "r", "time": T_MS, "payload": {"instances": [[1.0, 2.0]]}}
    message.update(overrides)
    return json.dumps(message)


def _event(**overrides):
    event = json.loads(encode("kserve-v1", "r", T_MS, [[1.0, 2.0]]))
    event.update(overrides)
    return json.dumps(event)


def _oip(tensor=None, **overrides):
    request = json.loads(encode("oip-v2", "r", T_MS, [[1.0, 2.0]]))
    request["inputs"][0].update(tensor or {})
    request.update(overrides)
    return json.dumps(request)


BAD = [
    ("thesis", b"\xff\xfe", "bad_json"),
    ("thesis", '{"type":', "bad_json"),
    ("oip-v2", "[1, 2]", "bad_json"),
    ("thesis", _thesis(payload=[[1.0]]), "bad_envelope"),
    ("kserve-v1", _event(specversion="0.3"), "bad_envelope"),
    ("kserve-v1", _event(data="[[1,2]]"), "bad_envelope"),
    ("oip-v2", _oip(inputs=[]), "bad_envelope"),
    ("oip-v2", _oip(parameters=[1]), "bad_envelope"),
    ("thesis", _thesis(type="response"), "not_request"),
    ("kserve-v1", _event(type="org.kubeflow.serving.inference.response"), "not_request"),
    ("thesis", _thesis(id=None), "bad_id"),
    ("thesis", _thesis(id=17), "bad_id"),
    ("kserve-v1", _event(id=""), "bad_id"),
    ("kserve-v1", '{"instances":[[1,2]]}', "bad_id"),
    ("thesis", _thesis(time=None), "bad_time"),
    ("thesis", _thesis(time="1763767500123"), "bad_time"),
    ("thesis", _thesis(time=True), "bad_time"),
    ("thesis", _thesis(time=-5), "bad_time"),
    ("kserve-v1", _event(time="yesterday"), "bad_time"),
    ("kserve-v1", _event(time="2025-13-01T00:00:00Z"), "bad_time"),
    ("kserve-v1", _event(time="2025-11-21T23:25:00"), "bad_time"),
    ("kserve-v1", _event(time=T_MS), "bad_time"),
    ("oip-v2", _oip(parameters={}), "bad_time"),
    ("oip-v2", _oip({"datatype": "BYTES"}), "bad_datatype"),
    ("oip-v2", _oip({"shape": [2]}), "bad_shape"),
    ("oip-v2", _oip({"shape": [2, 2]}), "bad_shape"),
    ("oip-v2", _oip({"shape": [1, True]}), "bad_shape"),
    ("thesis", _thesis(payload={}), "no_instances"),
    ("thesis", _thesis(payload={"instances": []}), "no_instances"),
    ("kserve-v1", _event(data={"instances": {"a": 1}}), "no_instances"),
    ("thesis", _thesis(payload={"instances": [1.0, 2.0]}), "bad_instance"),
    ("thesis", _thesis(payload={"instances": [[1.0, "2"]]}), "bad_instance"),
    ("thesis", _thesis(payload={"instances": [[1.0, {}]]}), "bad_instance"),
    ("thesis", _thesis(payload={"instances": [[1.0, False]]}), "bad_instance"),
    ("oip-v2", _oip({"data": [1.0, [2.0]]}), "bad_instance"),
    ("thesis", _thesis(payload={"instances": [[]]}), "wrong_feature_count"),
    ("thesis", _thesis(payload={"instances": [[1.0, 2.0], [1.0]]}), "wrong_feature_count"),
    ("thesis", '{"type":"request","id":"r","time":1,"payload":{"instances":[[NaN,1]]}}', "non_finite"),
    ("thesis", '{"type":"request","id":"r","time":1,"payload":{"instances":[[1e999,1]]}}', "non_finite"),
    ("oip-v2", _oip({"data": [1.0, float("inf")]}), "non_finite"),
]


@pytest.mark.parametrize("fmt,raw,reason", BAD, ids=[f"{f}-{r}-{i}" for i, (f, _, r) in enumerate(BAD)])
def test_decode_rejects_with_the_right_reason(fmt, raw, reason):
    with pytest.raises(FormatError) as caught:
        decode(fmt, raw)
    assert caught.value.reason == reason
    assert reason in formats.REASONS


def test_feature_count_is_enforced_when_given():
    raw = encode("thesis", "r", T_MS, ROWS)
    assert len(decode("thesis", raw, n_features=4).instances) == 2
    with pytest.raises(FormatError) as caught:
        decode("thesis", raw, n_features=3)
    assert caught.value.reason == formats.WRONG_FEATURE_COUNT


def test_a_record_over_max_record_bytes_is_too_large_before_any_other_check():
    raw = encode("kserve-v1", "r", T_MS, ROWS).replace('"id":"r"', '"id":"r\u00e9"')  # the cap counts UTF-8 bytes
    size = len(raw.encode())
    assert size == len(raw) + 1
    assert decode("kserve-v1", raw, max_record_bytes=size).request_id == "r\u00e9"
    assert decode("kserve-v1", raw.encode(), max_record_bytes=size).request_id == "r\u00e9"
    for too_large in (raw, raw.encode(), "not json" + "x" * size):
        with pytest.raises(FormatError, match=r"^too_large: \d+ bytes, limit \d+$") as caught:
            decode("kserve-v1", too_large, max_record_bytes=size - 1)
        assert caught.value.reason == formats.TOO_LARGE
    assert formats.REASONS[0] == formats.TOO_LARGE


def test_reasons_are_distinct_snake_case():
    assert len(set(formats.REASONS)) == len(formats.REASONS) == 19
    assert all(r.replace("_", "").isalpha() and r.islower() for r in formats.REASONS)


# ------------------------------------------------------------------ issue 13: named, categorical, missing, responses

MIXED = formats.Schema(("age", "color", "income", "size"), ("numeric", "categorical", "numeric", "categorical"),
                       "prediction", "categorical")
# MIXED reading label messages too (issue 21: the spec has ground_truth), and with a numeric output
LABELLED = formats.Schema(MIXED.features, MIXED.types, "prediction", "categorical", ground_truth=True)
LABELLED_NUMERIC = formats.Schema(MIXED.features, MIXED.types, "score", "numeric", ground_truth=True)


def test_reasons_end_with_the_job_level_ones_in_order():
    """The job's own reasons after the decoder's: the future check, the response join's, the label join's (issue
    21), late, then the version limit (issue 22)."""
    assert formats.REASONS[-7:] == ("future_time", "unmatched_response", "wrong_prediction_count", "unmatched_label",
                                    "wrong_label_count", "late", "too_many_versions")


def test_schema_checks_and_shorthands():
    assert formats.Schema.numeric(3) == formats.Schema(None, ("numeric",) * 3)
    spec = SimpleNamespace(input=SimpleNamespace(features=(SimpleNamespace(name="a", type="numeric"),
                                                           SimpleNamespace(name="b", type="categorical"))),
                           output=SimpleNamespace(name="p", type="numeric"), ground_truth=None,
                           versions=SimpleNamespace(cloudevent_attribute="endpoint"))
    assert formats.Schema.from_spec(spec) == formats.Schema(("a", "b"), ("numeric", "categorical"), "p", "numeric")
    spec.ground_truth = SimpleNamespace(metrics=("mae",))
    assert formats.Schema.from_spec(spec) == formats.Schema(("a", "b"), ("numeric", "categorical"), "p", "numeric",
                                                            ground_truth=True)
    spec.output, spec.ground_truth = None, None
    assert formats.Schema.from_spec(spec).output_name is None
    for bad in [(("a",), ("numeric", "numeric")), (("a", "a"), ("numeric", "numeric")), (("a",), ("text",)), ((), ()),
                (("a",), ("numeric",), None, "categorical", True)]:  # labels need an output
        with pytest.raises(ValueError):
            formats.Schema(*bad)
    with pytest.raises(ValueError, match="either"):
        decode("thesis", encode("thesis", "r", T_MS, ROWS), schema=formats.Schema.numeric(4), n_features=4)


def test_named_instances_take_values_by_name():
    raw = encode("thesis", "r", T_MS, [{"color": "red", "age": 31, "size": 2, "extra": "ignored"},
                                       [40.5, "blue", None, "XL"]])
    assert decode("thesis", raw, schema=MIXED).instances == [[31.0, "red", None, "2"], [40.5, "blue", None, "XL"]]
    for schema in (None, formats.Schema.numeric(4)):  # unnamed: lists only, as before
        with pytest.raises(FormatError) as caught:
            decode("thesis", encode("thesis", "r", T_MS, [{"a": 1}]), schema=schema)
        assert caught.value.reason == formats.BAD_INSTANCE


def test_null_is_a_missing_value_in_either_type():
    assert decode("thesis", encode("thesis", "r", T_MS, [[1.0, None]]), n_features=2).instances == [[1.0, None]]
    assert decode("kserve-v1", encode("kserve-v1", "r", T_MS, [[None, None, None, None]]),
                  schema=MIXED).instances == [[None, None, None, None]]
    assert decode("oip-v2", encode("oip-v2", "r", T_MS, [[None, 2.0]])).instances == [[None, 2.0]]


@pytest.mark.parametrize("value,text", [("red", "red"), ("", ""), ("r" * formats.MAX_CATEGORY_CHARS,) * 2,
                                        ("\U0001F600" * formats.MAX_CATEGORY_CHARS,) * 2, (1, "1"), (1.0, "1"), (-3, "-3"), (1e2, "100"),
                                        (-0.0, "0"), (2**70, str(2**70)), (1e20, "100000000000000000000")])
def test_categorical_values_are_text_integral_numbers_included(value, text):
    raw = json.dumps({"type": "request", "id": "r", "time": T_MS, "payload": {"instances": [[1, value, 2, "s"]]}})
    assert decode("thesis", raw, schema=MIXED).instances == [[1.0, text, 2.0, "s"]]


@pytest.mark.parametrize("row,reason", [
    ([1, 1.5, 2, "s"], "bad_instance"),       # a fractional number in a categorical feature
    ([1, True, 2, "s"], "bad_instance"),
    ([1, ["red"], 2, "s"], "bad_instance"),
    ([1, {"v": "red"}, 2, "s"], "bad_instance"),
    (["1", "red", 2, "s"], "bad_instance"),   # text in a numeric feature
    ([False, "red", 2, "s"], "bad_instance"),
    ([1, math.inf, 2, "s"], "non_finite"),    # a categorical number must be finite too
    ([1, math.nan, 2, "s"], "non_finite"),
    ([math.nan, 1.5, 2, "s"], "bad_instance"),  # every value's type, then finiteness
    ([1, "red", 2], "wrong_feature_count"),
    ([1, "r" * (formats.MAX_CATEGORY_CHARS + 1), 2, "s"], "bad_instance"),  # too long a category
    ([1, "\U0001F600" * (formats.MAX_CATEGORY_CHARS + 1), 2, "s"], "bad_instance"),
])
def test_value_types_are_checked_per_feature(row, reason):
    raw = json.dumps({"type": "request", "id": "r", "time": T_MS, "payload": {"instances": [row]}})
    with pytest.raises(FormatError) as caught:
        decode("thesis", raw, schema=MIXED)
    assert caught.value.reason == reason


def test_oip_per_feature_tensors():
    raw = encode("oip-v2", "r", T_MS, [[30, "red", 1.5, "M"], {"age": 40, "color": None, "size": 3}], schema=MIXED)
    request = json.loads(raw)
    assert [t["name"] for t in request["inputs"]] == list(MIXED.features)
    assert [t["datatype"] for t in request["inputs"]] == ["FP64", "BYTES", "FP64", "BYTES"]
    assert request["inputs"][0] == {"name": "age", "shape": [2], "datatype": "FP64", "data": [30, 40]}
    assert decode("oip-v2", raw, schema=MIXED).instances == [[30.0, "red", 1.5, "M"], [40.0, None, None, "3"]]

    def with_inputs(inputs):
        return json.dumps({"id": "r", "parameters": {"time": T_MS}, "inputs": inputs})
    age = {"name": "age", "shape": [2, 1], "datatype": "INT32", "data": [1, 2]}
    color = {"name": "color", "shape": [2], "datatype": "BYTES", "data": ["a", 7]}
    other = {"name": "unknown", "shape": [5], "datatype": "BOOL", "data": "ignored"}
    assert decode("oip-v2", with_inputs([other, color, age]), schema=MIXED).instances == [
        [1.0, "a", None, None], [2.0, "7", None, None]]  # features without a tensor are missing
    for inputs, reason in [
            ([age, {**color, "datatype": "FP64"}], "bad_datatype"),
            ([{**age, "datatype": "BYTES"}, color], "bad_datatype"),
            ([age, {**color, "shape": [3], "data": ["a", "b", "c"]}], "bad_shape"),
            ([age, {**color, "shape": [2, 2]}], "bad_shape"),
            ([age, {**color, "shape": [2], "data": ["a"]}], "bad_shape"),
            ([age, color, {**age, "data": [3, 4]}], "bad_envelope"),  # a feature twice
            ([other, {**other, "name": "input-1"}], "bad_envelope"),  # neither one tensor nor named ones
            ([age, "tensor"], "bad_envelope"),
            ([age, {**color, "data": ["a", 1.5]}], "bad_instance"),
            ([{**age, "data": [1, "2"]}], "bad_instance")]:
        with pytest.raises(FormatError) as caught:
            decode("oip-v2", with_inputs(inputs), schema=MIXED)
        assert caught.value.reason == reason, inputs


def test_oip_single_tensor_with_categorical_columns():
    raw = encode("oip-v2", "r", T_MS, [[30, 1, 1.5, 2.0], [31, None, 2, -1]])
    assert json.loads(raw)["inputs"][0]["shape"] == [2, 4]
    assert decode("oip-v2", raw, schema=MIXED).instances == [[30.0, "1", 1.5, "2"], [31.0, None, 2.0, "-1"]]
    with pytest.raises(FormatError) as caught:
        decode("oip-v2", _oip({"datatype": "BYTES", "data": ["a", "b"]}), schema=formats.Schema(
            ("x", "y"), ("categorical", "categorical")))
    assert caught.value.reason == formats.BAD_DATATYPE  # BYTES only in per-feature tensors
    with pytest.raises(ValueError, match="feature names"):
        encode("oip-v2", "r", T_MS, [[1, "red"]])  # text in list instances needs the names


def test_response_encodings_are_exact():
    assert formats.encode_response("thesis", "r1", T_MS, ["setosa", None, 2]) == (
        '{"type":"response","id":"r1","time":1763767500123,"payload":{"predictions":["setosa",null,2]}}')
    assert json.loads(formats.encode_response("kserve-v1", "r1", T_MS, [0.5])) == {
        "specversion": "1.0", "id": "r1", "source": formats.DEFAULT_SOURCE, "type": formats.CLOUDEVENT_RESPONSE_TYPE,
        "time": "2025-11-21T23:25:00.123Z", "datacontenttype": "application/json", "data": {"predictions": [0.5]}}
    assert formats.CLOUDEVENT_RESPONSE_TYPE == "org.kubeflow.serving.inference.response"
    assert json.loads(formats.encode_response("oip-v2", "r1", T_MS, ["a", "b"])) == {
        "id": "r1", "parameters": {"time": T_MS},
        "outputs": [{"name": "output-0", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}]}
    assert json.loads(formats.encode_response("oip-v2", "r1", T_MS, [1, None]))["outputs"][0]["datatype"] == "FP64"
    with pytest.raises(ValueError):
        formats.encode_response("oip-v2", "r1", T_MS, [math.nan])


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_responses_decode_only_with_an_output(fmt):
    raw = formats.encode_response(fmt, "r1", T_MS, ["setosa", None, 1])
    assert decode(fmt, raw, schema=MIXED) == formats.ParsedResponse("r1", T_MS, ["setosa", None, "1"])
    numeric_output = formats.Schema(MIXED.features, MIXED.types, "score", "numeric")
    assert decode(fmt, formats.encode_response(fmt, "r1", T_MS, [0.25, None, 3]), schema=numeric_output) == (
        "r1", T_MS, [0.25, None, 3.0])
    for schema in (None, formats.Schema.numeric(4), formats.Schema(MIXED.features, MIXED.types)):
        with pytest.raises(FormatError) as caught:  # as before issue 13
            decode(fmt, raw, schema=schema)
        assert caught.value.reason == ("bad_envelope" if fmt == "oip-v2" else "not_request")


def test_a_plain_kserve_body_with_predictions_is_a_response():
    assert decode("kserve-v1", '{"predictions":["a"]}', default_id="k", default_time_ms=5, schema=MIXED) == (
        formats.ParsedResponse("k", 5, ["a"]))
    both = decode("kserve-v1", '{"predictions":["a"],"instances":[[1,"a",2,"b"]]}', default_id="k",
                  default_time_ms=5, schema=MIXED)
    assert isinstance(both, formats.ParsedRequest)


def _response(fmt, predictions, encoder=formats.encode_response, key="predictions", **tensor):
    """A response (or with `formats.encode_label` and ``labels``, a label message) holding ``predictions`` as
    they are, valid or not; ``tensor``: the OIP tensor's fields to replace."""
    message = json.loads(encoder(fmt, "r", T_MS, ["x"]))
    if fmt == "oip-v2":
        message["outputs"][0].update({"data": predictions, "shape": [len(predictions) if isinstance(predictions, list)
                                                                      else 1], **tensor})
    else:
        (message["payload"] if fmt == "thesis" else message["data"])[key] = predictions
    return json.dumps(message, allow_nan=True)


def _label(fmt, labels, **tensor):
    return _response(fmt, labels, formats.encode_label, "labels", **tensor)


# (format, values, the OIP tensor's fields replaced, reason): a response's predictions or a label message's labels
BAD_OUTPUTS = [
    ("thesis", [], {}, "no_instances"),
    ("thesis", "setosa", {}, "no_instances"),
    ("kserve-v1", None, {}, "no_instances"),
    ("kserve-v1", [0.5], {}, "bad_instance"),
    ("thesis", [["a"]], {}, "bad_instance"),
    ("thesis", ["r" * (formats.MAX_CATEGORY_CHARS + 1)], {}, "bad_instance"),
    ("thesis", [math.inf], {}, "non_finite"),
    ("thesis", [math.nan, True], {}, "non_finite"),  # value by value: its type, then its finiteness
    ("oip-v2", [1, 2], {"datatype": "BOOL"}, "bad_datatype"),
    ("oip-v2", [1, 2], {"shape": [2, 2]}, "bad_shape"),
    ("oip-v2", [1, 2], {"shape": [3]}, "bad_shape"),
    ("oip-v2", [True], {}, "bad_instance"),
]


@pytest.mark.parametrize("fmt,values,tensor,reason", BAD_OUTPUTS)
@pytest.mark.parametrize("build", ["response", "label"])
def test_bad_responses_and_labels(build, fmt, values, tensor, reason):
    raw = _response(fmt, values, **tensor) if build == "response" else _label(fmt, values, **tensor)
    with pytest.raises(FormatError) as caught:
        decode(fmt, raw, schema=LABELLED)
    assert caught.value.reason == reason


def test_an_oip_response_is_exactly_one_tensor():
    with pytest.raises(FormatError, match="^bad_envelope: outputs is not exactly one tensor$"):
        decode("oip-v2", json.dumps({"id": "r", "outputs": [{}, {}]}), schema=MIXED)


def test_a_numeric_output_takes_numbers_only():
    numeric_output = formats.Schema(MIXED.features, MIXED.types, "score", "numeric")
    for raw, reason in [(_response("thesis", ["a"]), "bad_instance"),
                        (_response("oip-v2", ["a"], datatype="BYTES"), "bad_datatype")]:
        with pytest.raises(FormatError) as caught:
            decode("oip-v2" if "outputs" in raw else "thesis", raw, schema=numeric_output)
        assert caught.value.reason == reason


# ------------------------------------------------------------------ issue 21: label messages (ground truth)



def test_label_encodings_are_exact():
    assert formats.encode_label("thesis", "r1", T_MS, ["setosa", None, 2]) == (
        '{"type":"label","id":"r1","time":1763767500123,"payload":{"labels":["setosa",null,2]}}')
    assert json.loads(formats.encode_label("kserve-v1", "r1", T_MS, [0.5], source="http://labeller")) == {
        "specversion": "1.0", "id": "r1", "source": "http://labeller", "type": "io.mmon.inference.label",
        "time": "2025-11-21T23:25:00.123Z", "datacontenttype": "application/json", "data": {"labels": [0.5]}}
    assert formats.CLOUDEVENT_LABEL_TYPE == "io.mmon.inference.label"
    assert formats.encode_label("oip-v2", "r1", T_MS, ["a", "b"]) == (
        '{"id":"r1","parameters":{"time":1763767500123,"type":"label"},'
        '"outputs":[{"name":"label-0","shape":[2],"datatype":"BYTES","data":["a","b"]}]}')
    assert json.loads(formats.encode_label("oip-v2", "r1", T_MS, [1, None]))["outputs"][0]["datatype"] == "FP64"
    with pytest.raises(ValueError):
        formats.encode_label("thesis", "r1", T_MS, [math.inf])
    with pytest.raises(ValueError, match="unknown format"):
        formats.encode_label("csv", "r1", T_MS, [1])


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_labels_decode_only_with_ground_truth(fmt):
    raw = formats.encode_label(fmt, "r1", T_MS, ["setosa", None, 1])
    assert decode(fmt, raw, schema=LABELLED) == formats.ParsedLabels("r1", T_MS, ["setosa", None, "1"])
    assert decode(fmt, formats.encode_label(fmt, "r1", T_MS, [0.25, None, 3]), schema=LABELLED_NUMERIC) == (
        formats.ParsedLabels("r1", T_MS, [0.25, None, 3.0]))
    for schema in (MIXED, None, formats.Schema.numeric(4), formats.Schema(MIXED.features, MIXED.types)):
        with pytest.raises(FormatError, match="^not_request: type 'label'$|^not_request: type 'io.mmon.inference.label'$"):
            decode(fmt, raw, schema=schema)  # an OIP label message too: never read as a response
    # requests and responses read as before under a schema with ground truth
    assert decode(fmt, formats.encode_response(fmt, "r1", T_MS, ["a"]), schema=LABELLED) == (
        formats.ParsedResponse("r1", T_MS, ["a"]))
    assert decode(fmt, encode(fmt, "r1", T_MS, [[1, "red", 2, "XL"]], schema=LABELLED), schema=LABELLED) == (
        formats.ParsedRequest("r1", T_MS, [[1.0, "red", 2.0, "XL"]]))


def test_a_label_time_is_read_like_a_request_time():
    seconds = json.loads(formats.encode_label("thesis", "r1", T_MS, ["a"]))
    seconds["time"] = 1_700_000_000
    assert decode("thesis", json.dumps(seconds), schema=LABELLED).time_ms == 1_700_000_000_000
    without = json.loads(formats.encode_label("oip-v2", "r1", T_MS, ["a"]))
    del without["parameters"]["time"]
    assert decode("oip-v2", json.dumps(without), schema=LABELLED, default_time_ms=7).time_ms == 7


def test_a_plain_kserve_body_with_labels_is_a_label_message():
    assert decode("kserve-v1", '{"labels":["a",2]}', default_id="k", default_time_ms=5, schema=LABELLED) == (
        formats.ParsedLabels("k", 5, ["a", "2"]))
    assert isinstance(decode("kserve-v1", '{"labels":["a"],"predictions":["b"]}', default_id="k", default_time_ms=5,
                             schema=LABELLED), formats.ParsedResponse)
    assert isinstance(decode("kserve-v1", '{"labels":["a"],"instances":[[1,"a",2,"b"]]}', default_id="k",
                             default_time_ms=5, schema=LABELLED), formats.ParsedRequest)
    with pytest.raises(FormatError, match="^no_instances"):  # without ground truth: a request without instances
        decode("kserve-v1", '{"labels":["a"]}', default_id="k", default_time_ms=5, schema=MIXED)


def test_an_oip_message_with_inputs_is_a_request_whatever_its_parameters_type():
    request = json.loads(encode("oip-v2", "r1", T_MS, [[1, "red", 2, "XL"]], schema=LABELLED))
    request["parameters"]["type"] = "label"
    request["outputs"] = [{"name": "label-0", "shape": [1], "datatype": "BYTES", "data": ["a"]}]
    assert decode("oip-v2", json.dumps(request), schema=LABELLED) == ("r1", T_MS, [[1.0, "red", 2.0, "XL"]])


@pytest.mark.parametrize("fmt,raw,reason", [
    ("oip-v2", json.dumps({"id": "r", "parameters": {"type": "label"}, "outputs": [{}, {}]}), "bad_envelope"),
    ("oip-v2", json.dumps({"id": "r", "parameters": {"type": "label", "time": 5}, "outputs": "x"}), "bad_envelope"),
    ("thesis", _label("thesis", ["a"]).replace('"r"', "7"), "bad_id"),
    ("kserve-v1", _label("kserve-v1", ["a"]).replace("2025-11-21T23:25:00.123Z", "soon"), "bad_time"),
    ("oip-v2", _label("oip-v2", ["a"]).replace(str(T_MS), "-1"), "bad_time"),
])
def test_bad_label_envelopes_ids_and_times(fmt, raw, reason):
    with pytest.raises(FormatError) as caught:
        decode(fmt, raw, schema=LABELLED)
    assert caught.value.reason == reason


def test_a_numeric_output_takes_numeric_labels_only():
    for raw, fmt, reason in [(_label("thesis", ["a"]), "thesis", "bad_instance"),
                             (_label("oip-v2", ["a"], datatype="BYTES"), "oip-v2", "bad_datatype")]:
        with pytest.raises(FormatError) as caught:
            decode(fmt, raw, schema=LABELLED_NUMERIC)
        assert caught.value.reason == reason


def _normalised(value, kind):
    """What decode gives for an encoded value of a feature of `kind`."""
    if value is None:
        return None
    if kind == "numeric":
        return float(value)
    return value if isinstance(value, str) else str(int(value))


numeric_value = st.one_of(st.none(), finite, st.integers(-10**6, 10**6))
categorical_value = st.one_of(st.none(), st.text(max_size=8), st.integers(-10**20, 10**20),
                              st.integers(-10**6, 10**6).map(float))


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(formats.FORMATS), data=st.data(),
       rows=st.lists(st.tuples(numeric_value, categorical_value, numeric_value, categorical_value,
                               st.booleans()), min_size=1, max_size=4))
def test_named_categorical_and_missing_values_round_trip(fmt, data, rows):
    instances = [dict(zip(MIXED.features, row[:4])) if row[4] else list(row[:4]) for row in rows]
    raw = encode(fmt, "r", T_MS, instances, schema=MIXED if fmt == "oip-v2" else None)
    expected = [[_normalised(v, kind) for v, kind in zip(row[:4], MIXED.types)] for row in rows]
    assert decode(fmt, raw, schema=MIXED) == ("r", T_MS, expected)
    predictions = data.draw(st.lists(categorical_value, min_size=1, max_size=4))
    response = decode(fmt, formats.encode_response(fmt, "r", T_MS, predictions), schema=MIXED)
    assert response == formats.ParsedResponse("r", T_MS, [_normalised(v, "categorical") for v in predictions])
    labels = decode(fmt, formats.encode_label(fmt, "r", T_MS, predictions), schema=LABELLED)
    assert labels == formats.ParsedLabels("r", T_MS, [_normalised(v, "categorical") for v in predictions])


# ------------------------------------------------------------------ the cases the Java parser is held to

PARSE_CASES = json.loads((Path(__file__).resolve().parent.parent / "jvm" / "udfs" / "src" / "test" / "resources"
                          / "parse_cases.json").read_text())


def _labels(schema: dict, instances: list) -> list:
    """The categorical values outside the vocabularies, each once, first seen first (the Java parser's labels)."""
    vocabularies = schema["vocabularies"]
    categorical = [t == "categorical" for t in schema["types"]]
    labels = []
    for instance in instances:
        for j, value in enumerate(instance):
            if categorical[j] and value is not None and value not in vocabularies[j] and value not in labels:
                labels.append(value)
    return labels


@pytest.mark.parametrize("case", PARSE_CASES["cases"], ids=lambda case: case["name"])
def test_the_java_parsers_cases_are_what_the_reference_decoder_makes(case):
    """jvm/udfs/src/test/resources/parse_cases.json (ParseCasesTest holds RequestParser to it) still states
    what `formats.decode` makes of each line: the one reference for both parsers."""
    schema = PARSE_CASES["schemas"][case["schema"]]
    expect = case["expect"]
    decoded = formats.Schema(tuple(schema["names"]), tuple(schema["types"]), schema.get("output_name"),
                             schema.get("output_type") or "categorical", schema.get("ground_truth", False),
                             schema.get("version_attribute", formats.DEFAULT_VERSION_ATTRIBUTE))
    try:
        parsed = formats.decode(case["format"], case["line"], schema=decoded, default_id=case["default_id"],
                                default_time_ms=case["default_time_ms"])
    except formats.FormatError as err:
        assert err.reason == expect["reason"]
        return
    assert expect["reason"] is None
    response, truth = isinstance(parsed, formats.ParsedResponse), isinstance(parsed, formats.ParsedLabels)
    instances = parsed.instances if isinstance(parsed, formats.ParsedRequest) else [[value] for value in parsed[2]]
    assert (parsed.request_id, parsed.time_ms, response, truth, instances) == (
        expect["request_id"], expect["request_time_ms"], expect["response"], expect["truth"], expect["instances"])
    assert formats.version_of(case["format"], json.loads(case["line"]), decoded) == expect.get("version")
    output_column = {"types": [schema.get("output_type")], "vocabularies": [schema.get("output_vocabulary")]}
    assert _labels(output_column if response or truth else schema, instances) == expect["labels"]


def test_the_cases_cover_a_version_in_every_format_and_every_kind():
    """Issue 22: each format's version named by a request, a response and a label message; and a bad one rejected."""
    cases = PARSE_CASES["cases"]
    named = {(case["format"], case["expect"]["response"], case["expect"]["truth"]) for case in cases
             if case["expect"].get("version") is not None}
    assert named == {(fmt, response, truth) for fmt in formats.FORMATS
                     for response, truth in ((False, False), (True, False), (False, True))}
    rejected = {case["format"] for case in cases if case["expect"]["reason"] == formats.BAD_ENVELOPE
                and ("version" in case["name"] or "endpoint" in case["name"])}
    assert rejected == set(formats.FORMATS)


def test_the_cases_cover_label_messages_in_every_format_and_every_reason():
    """Issue 21: label messages in the three formats, accepted and rejected, with and without ground truth."""
    cases = PARSE_CASES["cases"]
    truths = {case["format"] for case in cases if case["expect"]["truth"]}
    assert truths == set(formats.FORMATS)
    unread = {case["format"] for case in cases if "label" in case["name"] and case["expect"]["reason"] == "not_request"}
    assert unread == set(formats.FORMATS)
    decoder_reasons = set(formats.REASONS[:formats.REASONS.index(formats.FUTURE_TIME)]) - {formats.TOO_LARGE}
    assert {case["expect"]["reason"] for case in cases} - {None} == decoder_reasons
