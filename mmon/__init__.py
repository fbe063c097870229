"""The ``mmon`` command (`mmon.cli`): one entry point, a subcommand per task, on top of every layer."""
