"""Development tools: the real local services the tests and benchmarks run against (`devtools.services`:
a Kafka broker in KRaft mode, a Flink standalone cluster, on 127.0.0.1) and the handling of child
processes (`devtools.processes`). Not shipped in the image."""
