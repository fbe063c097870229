"""`mmon report`: one self-contained HTML page of what a monitoring run found.

Layers: `outputs` reads a run's records (an embedded run's folder or the Kafka output topics),
`findings` derives the summary from them, `figures` draws the matplotlib plots, `page` fills the
Jinja2 template, `cli` is the command. Nothing in `udfs` or `flink_job` imports this package.
"""
