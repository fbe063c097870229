"""The numeric core of mmon: numpy/scipy only, no Flink.

``stats`` (mergeable window accumulators), ``quantiles`` (their percentile sketch), ``histogram``
(the shared binning and drift layout), ``drift`` (window-vs-baseline distances), ``outliers``
(per-value rules), ``baseline`` (training statistics, JSON) and ``calibration`` (``threshold: auto``).
"""
