"""Calibrated threshold curves cached on disk, so that a job starts without re-running the calibration.

`udfs.calibration.threshold_curves` depends only on the baseline, the metric, the false-alarm rate and
``normalize``; at 1,000 features its simulation takes seconds (4-8 s on a shared 2-core machine for the
five histogram metrics), most of a wide job's start-up. `threshold_curves` here reads the curves from a
side file when one was written for the same key, and writes it after computing them otherwise. The key is
the baseline's `udfs.baseline.Baseline.fingerprint` (its statistics, however it was stored or fetched),
the metric, rate and ``normalize``, and :data:`CALIBRATION_VERSION`, a digest of the calibration's source
(`udfs.calibration` and the metrics and tests it simulates), so that after any change to that code no older
file is read.

The files sit in ``<baseline file>.calibration/`` beside a local baseline whose folder is writable,
else in the user's cache (``$MMON_CACHE_DIR``, default ``~/.cache/mmon/calibration``): a baseline read
over HTTP(S) or from S3 (any ``scheme://`` location), or mounted read-only from a ConfigMap. Each is an
``np.savez`` archive of the curves' dataclass fields, saved by name and read back without pickle
(`save_fields`, `load_fields`), so the cache follows `udfs.calibration.ThresholdCurves` as its fields
change. A file that cannot be read (torn, from another version, a field not storable) is a miss: the curves
are computed again, never wrong.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

from contract.spec import DriftSpec

from udfs import calibration, drift, two_sample
from udfs.baseline import Baseline

CALIBRATION_VERSION = hashlib.sha256(b"".join(Path(module.__file__).read_bytes()
                                              for module in (calibration, drift, two_sample))).hexdigest()[:12]
"""The source the curves come from: a cache file of other code is never read."""
CACHE_ENV = "MMON_CACHE_DIR"
SUFFIX = ".calibration"
NAMES = ".names"  # a mapping field is stored as its names, then its values stacked (STACK) or one array each
STACK = ".stack"


def threshold_curves(baseline: Baseline, metric: str, false_alarm_rate: float, *, normalize: bool = False,
                     folder: Optional[Path] = None) -> calibration.ThresholdCurves:
    """`udfs.calibration.threshold_curves`, read from ``folder`` when cached there, else computed and cached
    (a folder that cannot be written caches nothing); ``folder=None`` computes."""
    path = None if folder is None else folder / file_name(baseline, metric, false_alarm_rate, normalize)
    if path is not None and path.is_file():
        try:
            return load_fields(calibration.ThresholdCurves, path)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
            pass  # a miss: computed and written again below
    curves = calibration.threshold_curves(baseline, metric, false_alarm_rate, normalize=normalize)
    if path is not None:
        try:
            save_fields(curves, path)
        except (OSError, ValueError, TypeError):
            pass  # not writable, or a field numpy cannot store without pickle: computed every time
    return curves


def calibrate_defaults(baseline: Baseline, location: Union[str, Path]) -> tuple[str, ...]:
    """Compute and cache, for the baseline saved at ``location``, the curves that a spec with the default
    drift metrics needs (`contract.spec.DriftSpec`'s histogram metrics at their default rate): what the
    job's first start would otherwise simulate (``mmon baseline --calibrate``). Returns those metrics."""
    folder = folder_for(location)
    metrics = {name: config for name, config in DriftSpec().metrics.items() if name in drift.LAYOUT_METRICS}
    for name, config in metrics.items():
        threshold_curves(baseline, name, config.false_alarm_rate, normalize=config.normalize, folder=folder)
    return tuple(metrics)


def file_name(baseline: Baseline, metric: str, false_alarm_rate: float, normalize: bool) -> str:
    """The cache file of one calibration: every input it depends on, and :data:`CALIBRATION_VERSION`."""
    scale = "normalized" if normalize else "raw"
    return f"{baseline.fingerprint}-{metric}-{false_alarm_rate!r}-{scale}-{CALIBRATION_VERSION}.npz"


def folder_for(baseline: Union[str, Path]) -> Optional[Path]:
    """Where a baseline's curves are cached: ``<file>.calibration/`` beside a local file whose folder is
    writable, else the user's cache (module docstring); None when neither can be created."""
    location = str(baseline)
    if "://" not in location:
        beside = Path(location).with_name(Path(location).name + SUFFIX)
        if _writable_folder(beside):
            return beside
    shared = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mmon" / "calibration")
    return shared if _writable_folder(shared) else None


def _writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def save_fields(instance, path: Path) -> None:
    """Write a dataclass's fields to an ``.npz`` archive by name: an array or a number as itself, a mapping of
    arrays as its names (``<field>.names``) and its values, stacked into one array (``<field>.stack``) when
    they have one shape and dtype (a thousand features' curves: one array to read, not a thousand), else one
    each (``<field>.0``, ...). Written to a temporary file, then renamed, so a reader never sees half a file;
    a field numpy stores only by pickle raises TypeError."""
    arrays: dict[str, np.ndarray] = {}
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if isinstance(value, Mapping):
            arrays[field.name + NAMES] = np.array(list(value), dtype=str)
            arrays.update(_mapping_arrays(field.name, [_storable(item) for item in value.values()]))
        else:
            arrays[field.name] = _storable(value)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", suffix=".npz", delete=False) as handle:
        try:
            np.savez(handle, **arrays)
        except BaseException:
            os.unlink(handle.name)
            raise
    os.chmod(handle.name, 0o644)  # readable like any file the job writes (a temporary file is the owner's only)
    os.replace(handle.name, path)


def load_fields(cls: type, path: Path):
    """The instance of dataclass ``cls`` that `save_fields` wrote to ``path`` (``cls(**fields)``)."""
    fields = {}
    with np.load(path, allow_pickle=False) as archive:
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            if field.name + NAMES in archive:
                names = archive[field.name + NAMES].tolist()
                values = _shared(list(archive[field.name + STACK]) if field.name + STACK in archive
                                 else [archive[f"{field.name}.{i}"] for i in range(len(names))])
                fields[field.name] = dict(zip(names, values, strict=True))
            else:
                value = archive[field.name]
                fields[field.name] = value.item() if value.ndim == 0 else value
    return cls(**fields)


def _shared(values: list[np.ndarray]) -> list[np.ndarray]:
    """``values`` with equal arrays made one object again, as the calibration shares one null among the columns
    that have it: the curves travel pickled with the job's drift step, and pickle writes a shared array once (at
    1,000 features the loaded curves pickled to 90 MB unshared, and the JVM decoding them ran out of its 1 GB)."""
    seen: dict[tuple, np.ndarray] = {}
    return [seen.setdefault((value.dtype.str, value.shape, value.tobytes()), value) for value in values]


def _mapping_arrays(name: str, values: list[np.ndarray]) -> dict[str, np.ndarray]:
    if values and len({(value.shape, value.dtype) for value in values}) == 1:
        return {name + STACK: np.stack(values)}
    return {f"{name}.{i}": value for i, value in enumerate(values)}


def _storable(value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"{type(value).__name__} is stored only by pickle")
    return array
