"""The wire formats: exact encodings, round trips, and every dead-letter reason."""
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flink_job import config, formats
from flink_job.formats import FormatError, decode, encode

T_MS = 1_763_767_500_123  # 2025-11-21T23:25:00.123Z
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_formats_match_the_spec_choices():
    assert formats.FORMATS == config.INPUT_FORMATS


def test_thesis_encoding_is_exact():
    assert encode("thesis", "req-1", T_MS, [ROWS[0]]) == (
        '{"type":"request","id":"req-1","time":1763767500123,"payload":{"instances":[[5.1,3.5,1.4,0.2]]}}')


def test_kserve_v1_is_a_cloudevent_with_millisecond_utc_time():
    event = json.loads(encode("kserve-v1", "req-1", T_MS, ROWS))
    assert event == {"specversion": "1.0", "id": "req-1", "source": "mmon/iris",
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
    ("thesis", _thesis(payload={"instances": [[1.0, None]]}), "bad_instance"),
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


def test_reasons_are_distinct_snake_case():
    assert len(set(formats.REASONS)) == len(formats.REASONS) == 12
    assert all(r.replace("_", "").isalpha() and r.islower() for r in formats.REASONS)


def test_the_java_parser_uses_the_same_reasons():
    """RequestParser.java's reason constants are formats.REASONS, name for name (one list of reasons)."""
    java = (Path(__file__).resolve().parent.parent / "jvm" / "udfs" / "src" / "main" / "java" / "io" / "github"
            / "mmon" / "flink" / "RequestParser.java").read_text()
    constants = dict(re.findall(r'static final String ([A-Z_]+) = "([a-z_]+)";', java))
    assert {name: value for name, value in constants.items() if value in formats.REASONS} == {
        name: getattr(formats, name) for name in constants if getattr(formats, name, None) in formats.REASONS}
    assert set(formats.REASONS) <= set(constants.values())
