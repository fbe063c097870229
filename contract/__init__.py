"""What every part of mmon agrees on, in plain Python (no numpy, no Flink): the bottom layer.

- `contract.spec`: the monitor spec (``monitor.yaml``), typed and validated, loaded once;
- `contract.formats`: the inference-log wire formats, their encoders and the reference decoder, and the
  dead-letter reasons;
- `contract.outputs`: the output vocabulary (kinds, file names, topics, summary and accounting fields);
- `contract.kafka_properties`: Kafka client properties from the environment and flags.

The layers above import from here; nothing here imports from them (tests/test_layers.py).
"""
