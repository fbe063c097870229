"""The Java side of the contract: ``Contract.java`` is generated from `contract` and up to date, the Java
sources spell no shared name but through it, and ``JobRows.java`` names the fields of `flink_job.rows`."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

from contract import formats, outputs, spec

from flink_job import rows

ROOT = Path(__file__).resolve().parent.parent
JAVA = ROOT / "jvm" / "udfs" / "src" / "main" / "java" / "io" / "github" / "mmon" / "flink"
GENERATOR = runpy.run_path(str(ROOT / "scripts" / "generate_contract.py"))
SHARED_NAMES = {*formats.FORMATS, *formats.REASONS, *spec.FEATURE_TYPES, *outputs.KINDS, *outputs.ACCOUNTING,
                outputs.RESPONSES_JOINED, outputs.LABELS_JOINED, formats.CLOUDEVENT_REQUEST_TYPE,
                formats.CLOUDEVENT_RESPONSE_TYPE, formats.CLOUDEVENT_LABEL_TYPE, formats.THESIS_VERSION_KEY,
                formats.OIP_VERSION_KEY, spec.DEFAULT_VERSION_ATTRIBUTE, outputs.VERSION}


def test_contract_java_is_generated_from_the_python_contract():
    assert (JAVA / "Contract.java").read_text() == GENERATOR["render"](), \
        "Contract.java is stale: run python scripts/generate_contract.py"


def test_the_generated_constants_carry_the_python_values():
    constants = dict(re.findall(r'public static final String ([A-Z0-9_]+) = "([^"]*)";', GENERATOR["render"]()))
    assert {value for value in constants.values()} == SHARED_NAMES
    assert constants["LATE"] == formats.LATE and constants["DEAD_LETTER"] == outputs.DEAD_LETTER
    assert re.search(r"MAX_CATEGORY_CHARS = (\d+);", GENERATOR["render"]()).group(1) == str(formats.MAX_CATEGORY_CHARS)
    assert re.search(r"MAX_VERSION_CHARS = (\d+);", GENERATOR["render"]()).group(1) == str(formats.MAX_VERSION_CHARS)


def string_literals(java: str) -> set[str]:
    """The string literals of a Java source, comments left out; a JSON field read by name (``.get("x")``) is
    a field of a record, not one of the shared names."""
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", java, flags=re.S)
    code = re.sub(r'\.get\("[a-z_]+"\)', "", code)
    return {literal[1:-1] for literal in re.findall(r'"(?:[^"\\\n]|\\.)*"', code)}


def test_no_java_source_spells_a_shared_name_but_the_contract():
    """One definition: every other Java source reaches these strings through ``Contract``."""
    spelled = {path.name: sorted(string_literals(path.read_text()) & SHARED_NAMES)
               for path in sorted(JAVA.glob("*.java")) if path.name != "Contract.java"}
    assert {name: found for name, found in spelled.items() if found} == {}
    assert string_literals('/* "late" */ String a = "drift"; // "stats"\n x.get("outliers"); "a\\"b"') == {"drift", 'a\\"b'}


def test_the_categorical_code_rule_round_trips():
    for j in (0, 1, 7, 2047):
        code = formats.label_code(j)
        assert code < 0 and formats.label_index(code) == j
    assert "return -(1 + j);" in GENERATOR["render"]() and "return (int) (-1 - code);" in GENERATOR["render"]()


def test_job_rows_names_the_fields_of_the_python_row_types():
    java = (JAVA / "JobRows.java").read_text()
    constants = dict(re.findall(r'public static final String ([A-Z0-9_]+) = "([^"]*)";', GENERATOR["render"]()))
    arrays = {name: [text or constants[constant] for text, constant in re.findall(r'"([a-z_]+)"|Contract\.([A-Z_]+)', body)]
              for name, body in re.findall(r"String\[\] ([A-Z_]+) = \{([^}]*)\}", java)}
    assert arrays["REQUEST_FIELDS"] == list(rows.REQUEST_FIELDS[:-1])  # then rowtime, the record's timestamp
    assert arrays["RECORD_FIELDS"] == rows.OUTPUT_ROW.get_field_names()
    assert arrays["SUB_BATCH_FIELDS"] == rows.SUB_BATCH_ROW.get_field_names()
