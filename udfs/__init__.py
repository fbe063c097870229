"""The numeric core of mmon: numpy/scipy only, no Flink.

``stats`` (mergeable window accumulators), ``categorical`` (the same for a categorical feature: exact
counts, then DataSketches), ``quantiles`` (their percentile sketch), ``histogram``
(the shared binning and drift layout), ``drift`` (window-vs-baseline distances), ``two_sample`` (KS and
Cramér-von Mises between a window's CDF and the training sample), ``outliers`` (per-value rules),
``baseline`` (training statistics and sample, JSON) and ``calibration`` (``threshold: auto``).
"""
