"""The canary example's Kubernetes manifests: the comparison topic is created only for a spec that compares two
versions."""
from pathlib import Path

from contract.spec import load_spec

from operator_glue.manifests import DeploySettings, render

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _topics(example: str) -> set[str]:
    bodies = [m.body for m in render(load_spec(EXAMPLES / example / "monitor.yaml"), DeploySettings(name=example))]
    return {body["spec"]["topicName"] for body in bodies if body["kind"] == "KafkaTopic"}


def test_the_comparison_topic_exists_only_when_two_versions_are_compared():
    spec = load_spec(EXAMPLES / "canary" / "monitor.yaml")
    assert {spec.kafka.topics.comparison, spec.kafka.topics.performance} <= _topics("canary")
    assert load_spec(EXAMPLES / "iris" / "monitor.yaml").kafka.topics.comparison not in _topics("iris")
