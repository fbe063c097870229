"""The staged penguins inference stream (issue 13): mixed-type instances with gaps and the model's responses.

Five stages of `stage_size` requests, one instance each, the instance an object keyed by feature name (the
KServe v1 body of a scikit-learn pipeline: ``{"instances": [{"island": "Biscoe", "bill_length_mm": 39.1, ...}]}``):

1. ``normal``        training rows drawn with replacement, the measurements jittered by N(0, (0.05 σ_j)²)
   (σ the training split's sample std); a cell missing in the drawn row is ``null`` in the instance, so
   the stream has the training data's gaps at its rate;
2. ``island_mix``    as normal, but ``island`` drawn independently of the row from `SHIFTED_ISLAND_MIX`
   (Torgersen, the rarest island in training, becomes the most frequent), and exactly
   round(`UNSEEN_SHARE` n) positions of the stage get `UNSEEN_ISLAND`, an island the baseline never saw;
3. ``sex_missing``   as normal, but exactly round(`SEX_MISSING_SHARE` n) of the stage's instances lack
   ``sex``: the drawn rows' own gaps (``null``) plus positions chosen among the rest, whose instances
   leave the key out (an absent key is a missing value too);
4. ``body_mass``     as normal, with ``body_mass_g`` raised by `BODY_MASS_SHIFT_SIGMAS` σ;
5. ``normal``        as stage 1.

Arrivals are a Poisson process at `rate` requests per second, the stages back to back from `start_ms`.
Responses (``responses=True``): each request's prediction, by the example's own model
(`streams.penguin_model`: `predict` on the instance as sent), logged ``1 + Exp(LATENCY_MS)`` ms
after its request, except that

- round(`EARLY_SHARE` N) responses (N = all requests) arrive *before* their request in the log (their
  time stays after the request's: the logger delivered them first);
- round(`NO_RESPONSE_SHARE` N) requests get no response (a missing prediction);
- round(`ORPHAN_SHARE` N) responses answer no request at all (ids ``orphan-...``, a random class, at a
  random time of the stream): the job dead-letters them ``unmatched_response``.

Ground truth (``labels=True``, the stream of a spec with ``ground_truth``): six stages, `STAGE_KINDS_WITH_LABELS`,
the four above, then

5. ``concept``       inputs drawn exactly as normal, but the true species of exactly round(`CONCEPT_SHARE` n)
   of the stage's instances changed to one of the other species at random: the model is wrong far more
   often (accuracy about 0.65 against 0.999 in the normal stages) while no input column moves;
6. ``normal``        as stage 1;

(stages 1-4 are the same requests at the same times as the default stream's) and label messages
(`contract.formats.encode_label`: one label per request, its instance's true species, the drawn training
row's ``species``) interleaved at the time each label became known: the request's time plus a delay
log-uniform between `LABEL_DELAY_MIN_MS` (1 s) and `LABEL_DELAY_MAX_MS` (3 h) of event time, so after its
request and (but for a latency above 1 s, odds e^-50) after its response. Besides,

- round(`UNLABELLED_SHARE` N) requests are never labelled (independently of their responses);
- round(`WRONG_LABEL_COUNT_SHARE` N) of those never-labelled requests get instead a label message with two
  labels for their one instance, at their time plus a delay: the job dead-letters it ``wrong_label_count``;
- round(`UNMATCHED_LABEL_SHARE` N) label messages name no request (ids ``unknown-...``, a random species, at a
  random time of the requests' span): the job dead-letters them ``unmatched_label``.

Those draws come after every draw of the stream without labels, which ``labels=False`` (the default) leaves
byte for byte as it was: five stages, no label lines.

Lines are in arrival order. Every random draw comes from one ``numpy.random.Generator(PCG64(seed))`` in a
fixed order and the format is applied last, so one seed gives the same data in every format and one byte
string per format.

API: `generate` -> `PenguinStream` (its ``lines``, per-request arrays, `StageInfo` per stage with the
columns it is built to flag); `write_jsonl`, `write_labels`; `write_example` (the job's default input for
the penguins example, labelled when its spec has ``ground_truth``).
CLI: ``mmon stream penguins -o penguins.jsonl`` (``--help`` for the rest).
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional, Sequence, Union

import numpy as np

from contract import formats

from streams import iris, penguin_model

ROOT = Path(__file__).resolve().parent.parent
PENGUINS = ROOT / "examples" / "penguins"
DEFAULT_TRAINING = PENGUINS / "training.csv"
DEFAULT_MODEL = PENGUINS / "model.json"
DEFAULT_FORMAT = formats.KSERVE_V1
DEFAULT_STAGE_SIZE = 2_000
DEFAULT_RATE = 20.0  # requests per second: 100 s a stage at the default size, about 6 windows of 15 s
DEFAULT_SEED = 2025
DEFAULT_START_MS = 1_800_000_000_000  # as streams.iris: a constant, so the default output is fixed
OUTPUT = "prediction"  # the monitored output's name (examples/penguins/monitor.yaml: output.name)
SOURCE = "mmon/penguins"  # the kserve-v1 CloudEvents' source: the generated stream names its model
FEATURES = penguin_model.FEATURES

STAGE_KINDS = ("normal", "island_mix", "sex_missing", "body_mass", "normal")
STAGE_KINDS_WITH_LABELS = ("normal", "island_mix", "sex_missing", "body_mass", "concept", "normal")
DECIMALS = 2
JITTER_SIGMAS = 0.05
SHIFTED_ISLAND_MIX = {"Biscoe": 0.2, "Dream": 0.25, "Torgersen": 0.55}  # training: 0.48, 0.36, 0.16
UNSEEN_ISLAND = "Anvers"
UNSEEN_SHARE = 0.01
SEX_MISSING_SHARE = 0.40
BODY_MASS_SHIFT_SIGMAS = 1.0
LATENCY_MS = 20.0
EARLY_SHARE = 0.01
NO_RESPONSE_SHARE = 0.005
ORPHAN_SHARE = 0.002
CONCEPT_SHARE = 0.35  # of the concept stage's instances, labelled with another species than their row's
LABEL_DELAY_MIN_MS = 1_000  # label delays (event time after the request): log-uniform in [min, max)
LABEL_DELAY_MAX_MS = 3 * 3_600_000
UNLABELLED_SHARE = 0.05
UNMATCHED_LABEL_SHARE = 0.0005  # label messages for an id never seen: 6 at the default 12,000 requests
WRONG_LABEL_COUNT_SHARE = 0.0005  # label messages with two labels for a one-instance request
UNMATCHED_LABEL_PREFIX = "unknown-"

# Which monitored columns each stage kind is built to move, and through which kind of check. The model's
# prediction moves with its inputs; measured on the default stream (tests/test_penguin_stream.py checks
# it): the heavier penguins of stage 4 are called Gentoo more often, the island and sex stages leave the
# predicted species nearly as in training (the measurements carry the species).
DRIFTED = {"normal": (), "island_mix": ("island",), "sex_missing": (), "body_mass": ("body_mass_g",), "concept": ()}
MISSING_RATE_DRIFTED = {"normal": (), "island_mix": (), "sex_missing": ("sex",), "body_mass": (), "concept": ()}
# Which stage kinds make the model's realised accuracy drop enough for the accuracy test of the example's
# ground truth to alert its windows, measured on the labelled stream (tests/test_penguin_stream.py checks it
# per window): the concept stage by construction; the shifted island mix too, as the model reads the island
# (drawn independently of the row there) and gets about 3 % of that stage wrong against none of its training
# rows; the missing sex and the heavier penguins cost it under 1 %.
PERFORMANCE_DROP = {"normal": False, "island_mix": True, "sex_missing": False, "body_mass": False, "concept": True}

Row = dict  # feature name -> str | float | None; an absent key is a missing value


@dataclass(frozen=True)
class StageInfo:
    """One stage: what it is, when it is, what it holds and what a monitor should flag in it."""

    number: int  # 1..5
    kind: str  # a STAGE_KINDS entry
    first_ms: int  # its first request's time
    end_ms: int  # one past its last request's time: the stage spans [first_ms, end_ms)
    requests: int
    drifted: tuple[str, ...]  # columns whose histogram metrics (js, psi, hellinger, chi2) it moves
    missing_rate_drifted: tuple[str, ...]  # columns whose missing rate it moves
    missing: dict  # feature -> instances of the stage missing it (null or absent)
    unseen: int  # instances whose island the baseline never saw (each an `unseen` outlier)
    performance_drop: bool = False  # labelled stream: a realised-accuracy alert is due in its windows
    accuracy: Optional[float] = None  # labelled stream: the model's accuracy on its answered, labelled requests
    relabelled: int = 0  # concept stage: instances whose true species is not their row's

    @property
    def flags(self) -> tuple[str, ...]:
        """Every column some drift metric should flag in this stage's windows (none for a normal stage)."""
        return tuple(dict.fromkeys(self.drifted + self.missing_rate_drifted))


@dataclass(frozen=True)
class PenguinStream:
    """The requests in request-time order (arrays of length N), the log lines in arrival order."""

    ids: np.ndarray  # str, "req-000000123"
    time_ms: np.ndarray  # int64, non-decreasing
    rows: tuple  # one Row per request, as sent
    stage: np.ndarray  # int8, 1..5
    predictions: tuple  # str: the model's answer to each request (also where no response is logged)
    response_ms: np.ndarray  # int64 time of the request's response, -1: no response
    early: np.ndarray  # bool: the response's line precedes its request's line
    unseen: np.ndarray  # bool: the instance's island is UNSEEN_ISLAND
    orphan_ids: tuple  # responses without a request
    orphan_ms: np.ndarray  # int64, their times
    orphan_predictions: tuple  # str, their (random) classes
    lines: tuple  # str, no newline: requests and responses in arrival order
    stages: tuple  # StageInfo per stage
    feature_names: tuple[str, ...]
    format: str
    # Ground truth (labels=True; otherwise empty): per request its true species, when its label message arrives
    # (-1: never labelled), whether the concept stage changed its species, when a wrong-count label message
    # for it arrives (-1: none; only never-labelled requests get one); and the label messages for no request.
    truth: tuple = ()
    label_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    relabelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    wrong_count_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unmatched_label_ids: tuple = ()
    unmatched_label_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unmatched_labels: tuple = ()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def answered(self) -> np.ndarray:
        """bool: the request has a response in the log."""
        return self.response_ms >= 0

    @property
    def labelled(self) -> bool:
        """Whether the stream carries ground truth (label messages)."""
        return bool(self.truth)


@dataclass(frozen=True)
class _Training:
    islands: np.ndarray  # object: str or None
    sexes: np.ndarray  # object: str or None
    numbers: np.ndarray  # n x 4 float, NaN where missing
    std: np.ndarray  # 4, sample std of the present values
    species: Optional[np.ndarray]  # object: the label column's values (None: the CSV has no such column)


def _load_training(path: Path) -> _Training:
    if not path.is_file():
        raise ValueError(f"training CSV not found: {path}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = [name for name in penguin_model.FEATURES if rows and name not in rows[0]]
    if not rows or missing:
        raise ValueError(f"{path}: not a penguins training CSV (columns {', '.join(missing) or 'and rows'} missing)")

    def category(name):
        return np.array([None if row[name].strip() in penguin_model.MISSING else row[name] for row in rows], dtype=object)

    numbers = np.array([[np.nan if row[name].strip() in penguin_model.MISSING else float(row[name]) for name in penguin_model.NUMERIC]
                        for row in rows], dtype=float)
    species = (np.array([row[penguin_model.LABEL] for row in rows], dtype=object)
               if penguin_model.LABEL in rows[0] else None)
    return _Training(islands=category("island"), sexes=category("sex"), numbers=numbers,
                     std=np.nanstd(numbers, axis=0, ddof=1), species=species)


def _stage_rows(rng: np.random.Generator, data: _Training, kind: str, n: int) -> tuple[list, np.ndarray, np.ndarray]:
    """The stage's rows (feature order, missing as None, an injected missing ``sex`` left out), which rows
    hold the unseen island, and the drawn training rows' indices."""
    picks = rng.integers(0, len(data.numbers), size=n)
    numbers = data.numbers[picks] + rng.standard_normal((n, len(penguin_model.NUMERIC))) * (JITTER_SIGMAS * data.std)
    islands, sexes = data.islands[picks].copy(), data.sexes[picks].copy()
    unseen = np.zeros(n, dtype=bool)
    absent_sex = np.zeros(n, dtype=bool)
    if kind == "island_mix":
        islands = rng.choice(np.array(list(SHIFTED_ISLAND_MIX), dtype=object), size=n, p=list(SHIFTED_ISLAND_MIX.values()))
        unseen[rng.choice(n, size=int(round(UNSEEN_SHARE * n)), replace=False)] = True
        islands[unseen] = UNSEEN_ISLAND
    elif kind == "sex_missing":
        present = np.flatnonzero(sexes != None)  # noqa: E711 (elementwise)
        wanted = int(round(SEX_MISSING_SHARE * n)) - (n - len(present))
        absent_sex[rng.choice(present, size=max(wanted, 0), replace=False)] = True
    elif kind == "body_mass":
        numbers[:, penguin_model.NUMERIC.index("body_mass_g")] += BODY_MASS_SHIFT_SIGMAS * data.std[penguin_model.NUMERIC.index("body_mass_g")]
    numbers = np.round(numbers, DECIMALS)
    rows = []
    for i in range(n):
        row = {"island": islands[i]}
        row.update((name, None if np.isnan(value) else float(value)) for name, value in zip(penguin_model.NUMERIC, numbers[i]))
        if not absent_sex[i]:
            row["sex"] = sexes[i]
        rows.append({name: row[name] for name in penguin_model.FEATURES if name in row})  # the CSV's order
    return rows, unseen, picks


def generate(seed: int = DEFAULT_SEED, stage_size: int = DEFAULT_STAGE_SIZE, rate: float = DEFAULT_RATE,
             start_ms: int = DEFAULT_START_MS, format: str = DEFAULT_FORMAT, responses: bool = True,
             training_csv: Union[str, Path] = DEFAULT_TRAINING, model_json: Union[str, Path] = DEFAULT_MODEL,
             labels: bool = False) -> PenguinStream:
    """The staged stream for ``seed``, with ground truth (`STAGE_KINDS_WITH_LABELS`, label messages) when
    ``labels``. Raises ValueError for bad arguments or an unreadable CSV (labels need its ``species``)."""
    if stage_size < 1:
        raise ValueError(f"stage size must be positive, got {stage_size}")
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if format not in formats.FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(formats.FORMATS)}")
    data = _load_training(Path(training_csv))
    model = penguin_model.load(Path(model_json))
    if labels and data.species is None:
        raise ValueError(f"{training_csv}: labels need the training rows' {penguin_model.LABEL!r} column")
    rng = np.random.Generator(np.random.PCG64(seed))

    kinds = STAGE_KINDS_WITH_LABELS if labels else STAGE_KINDS
    rows, unseen, gaps, picks = [], [], [], []
    for kind in kinds:
        stage_rows, stage_unseen, stage_picks = _stage_rows(rng, data, kind, stage_size)
        rows += stage_rows
        unseen.append(stage_unseen)
        picks.append(stage_picks)
        gaps.append(rng.exponential(1000.0 / rate, size=stage_size))
    n = len(rows)
    time_ms = int(start_ms) + np.floor(np.cumsum(np.concatenate(gaps))).astype(np.int64)
    ids = np.array([f"req-{i:09d}" for i in range(n)])
    stage = np.repeat(np.arange(1, len(kinds) + 1, dtype=np.int8), stage_size)
    predictions = tuple(penguin_model.predict(model, rows))

    latency = 1 + np.floor(rng.exponential(LATENCY_MS, size=n)).astype(np.int64)
    order = rng.permutation(n)
    n_early, n_silent = int(round(EARLY_SHARE * n)), int(round(NO_RESPONSE_SHARE * n))
    early = np.zeros(n, dtype=bool)
    early[order[:n_early]] = True
    response_ms = time_ms + latency
    response_ms[order[n_early:n_early + n_silent]] = -1
    n_orphans = int(round(ORPHAN_SHARE * n))
    orphan_ms = np.sort(rng.integers(int(time_ms[0]), int(time_ms[-1]) + 1, size=n_orphans))
    orphan_classes = rng.choice(np.array(model["classes"], dtype=object), size=n_orphans)
    orphan_ids = tuple(f"orphan-{i:06d}" for i in range(n_orphans))

    schema = formats.Schema(features=tuple(penguin_model.FEATURES), types=tuple(
        formats.CATEGORICAL if name in penguin_model.CATEGORICAL else formats.NUMERIC for name in penguin_model.FEATURES),
        output_name=OUTPUT, output_type=formats.CATEGORICAL)
    # (arrival ms, rank, sequence, line): an early response just before its request, others at their time
    events = [(int(t), 1, i, formats.encode(format, request_id, int(t), [row], schema=schema, source=SOURCE))
              for i, (request_id, t, row) in enumerate(zip(ids.tolist(), time_ms.tolist(), rows))]
    if responses:
        for i in np.flatnonzero(response_ms >= 0).tolist():
            line = formats.encode_response(format, str(ids[i]), int(response_ms[i]), [predictions[i]], source=SOURCE)
            events.append((int(time_ms[i]), 0, i, line) if early[i] else (int(response_ms[i]), 2, i, line))
        events += [(int(t), 2, n + j, formats.encode_response(format, orphan_ids[j], int(t), [str(c)], source=SOURCE))
                   for j, (t, c) in enumerate(zip(orphan_ms.tolist(), orphan_classes.tolist()))]
    truth = _Truth.none() if not labels else _draw_truth(
        rng, data.species[np.concatenate(picks)], stage, kinds, time_ms, tuple(model["classes"]))
    # (arrival ms, 3, sequence, line): a label after anything else logged at the same ms
    events += [(int(truth.label_ms[i]), 3, i, formats.encode_label(format, str(ids[i]), int(truth.label_ms[i]),
                                                                   [truth.species[i]], source=SOURCE))
               for i in np.flatnonzero(truth.label_ms >= 0).tolist()]
    events += [(int(truth.wrong_count_ms[i]), 3, i, formats.encode_label(
        format, str(ids[i]), int(truth.wrong_count_ms[i]), [truth.species[i]] * 2, source=SOURCE))
        for i in np.flatnonzero(truth.wrong_count_ms >= 0).tolist()]
    events += [(int(t), 3, n + j, formats.encode_label(format, label_id, int(t), [species], source=SOURCE))
               for j, (label_id, t, species) in enumerate(zip(truth.unmatched_ids, truth.unmatched_ms.tolist(),
                                                              truth.unmatched_species))]
    events.sort(key=lambda event: event[:3])
    orphan_predictions = tuple(str(c) for c in orphan_classes)
    if not responses:
        response_ms = np.full(n, -1, dtype=np.int64)
        early, orphan_ids, orphan_ms, orphan_predictions = np.zeros(n, dtype=bool), (), orphan_ms[:0], ()

    unseen = np.concatenate(unseen)
    stages = tuple(_stage_info(number, kind, time_ms, rows, unseen, stage, truth, predictions, response_ms)
                   for number, kind in enumerate(kinds, start=1))
    return PenguinStream(ids=ids, time_ms=time_ms, rows=tuple(rows), stage=stage, predictions=predictions,
                         response_ms=response_ms, early=early, unseen=unseen, orphan_ids=orphan_ids,
                         orphan_ms=orphan_ms, orphan_predictions=orphan_predictions,
                         lines=tuple(event[3] for event in events), stages=stages,
                         feature_names=tuple(penguin_model.FEATURES), format=format,
                         truth=tuple(truth.species), label_ms=truth.label_ms, relabelled=truth.relabelled,
                         wrong_count_ms=truth.wrong_count_ms, unmatched_label_ids=truth.unmatched_ids,
                         unmatched_label_ms=truth.unmatched_ms, unmatched_labels=truth.unmatched_species)


@dataclass(frozen=True)
class _Truth:
    """The ground truth drawn for a labelled stream (`PenguinStream`'s fields of the same meaning)."""

    species: list  # str per request
    label_ms: np.ndarray
    relabelled: np.ndarray
    wrong_count_ms: np.ndarray
    unmatched_ids: tuple
    unmatched_ms: np.ndarray
    unmatched_species: tuple

    @classmethod
    def none(cls) -> "_Truth":
        """A stream without labels: nothing drawn, empty fields."""
        empty = np.zeros(0, dtype=np.int64)
        return cls([], empty, np.zeros(0, dtype=bool), empty, (), empty, ())


def _draw_truth(rng: np.random.Generator, species: np.ndarray, stage: np.ndarray, kinds: Sequence[str],
                time_ms: np.ndarray, classes: tuple) -> _Truth:
    """Every request's true species (the drawn row's, changed in the concept stage), its label's arrival, the
    never-labelled requests, the wrong-count and unmatched label messages: drawn in this fixed order."""
    n = len(species)
    truth = species.copy()
    relabelled = np.zeros(n, dtype=bool)
    for number, kind in enumerate(kinds, start=1):
        if kind == "concept":
            positions = np.flatnonzero(stage == number)
            chosen = rng.choice(positions, size=int(round(CONCEPT_SHARE * len(positions))), replace=False)
            shift = rng.integers(1, len(classes), size=len(chosen))  # to one of the other species
            truth[chosen] = [classes[(classes.index(old) + k) % len(classes)] for old, k in zip(truth[chosen], shift)]
            relabelled[chosen] = True
    delay = np.floor(np.exp(rng.uniform(np.log(LABEL_DELAY_MIN_MS), np.log(LABEL_DELAY_MAX_MS), size=n))).astype(np.int64)
    label_ms = time_ms + delay
    never = rng.permutation(n)[:int(round(UNLABELLED_SHARE * n))]
    label_ms[never] = -1
    wrong_count_ms = np.full(n, -1, dtype=np.int64)
    wrong = rng.choice(never, size=min(int(round(WRONG_LABEL_COUNT_SHARE * n)), len(never)), replace=False)
    wrong_count_ms[wrong] = time_ms[wrong] + delay[wrong]
    n_unmatched = int(round(UNMATCHED_LABEL_SHARE * n))
    unmatched_ms = np.sort(rng.integers(int(time_ms[0]), int(time_ms[-1]) + 1, size=n_unmatched))
    unmatched_species = tuple(str(c) for c in rng.choice(np.array(classes, dtype=object), size=n_unmatched))
    return _Truth([str(s) for s in truth], label_ms, relabelled, wrong_count_ms,
                  tuple(f"{UNMATCHED_LABEL_PREFIX}{i:06d}" for i in range(n_unmatched)), unmatched_ms, unmatched_species)


def _stage_info(number: int, kind: str, time_ms: np.ndarray, rows: Sequence[Row], unseen: np.ndarray,
                stage: np.ndarray, truth: _Truth, predictions: Sequence[str], response_ms: np.ndarray) -> StageInfo:
    positions = np.flatnonzero(stage == number)
    stage_rows = [rows[i] for i in positions.tolist()]
    labelled = {}
    if truth.species:
        scored = positions[(truth.label_ms[positions] >= 0) & (response_ms[positions] >= 0)]
        right = np.array([predictions[i] == truth.species[i] for i in scored.tolist()], dtype=bool)
        labelled = dict(performance_drop=PERFORMANCE_DROP[kind], accuracy=float(right.mean()) if len(right) else None,
                        relabelled=int(truth.relabelled[positions].sum()))
    return StageInfo(
        number=number, kind=kind, first_ms=int(time_ms[positions[0]]), end_ms=int(time_ms[positions[-1]]) + 1,
        requests=len(positions), drifted=DRIFTED[kind], missing_rate_drifted=MISSING_RATE_DRIFTED[kind],
        missing={name: sum(1 for row in stage_rows if row.get(name) is None) for name in penguin_model.FEATURES},
        unseen=int(unseen[positions].sum()), **labelled)


def write_jsonl(stream: PenguinStream, path_or_file: Union[str, Path, IO[str]]) -> None:
    """The stream's lines, one per line; '-' means stdout."""
    text = "".join(line + "\n" for line in stream.lines)
    if hasattr(path_or_file, "write"):
        path_or_file.write(text)
    elif str(path_or_file) == "-":
        sys.stdout.write(text)
    else:
        Path(path_or_file).write_text(text, encoding="utf-8", newline="\n")


LABEL_COLUMNS = ("id", "stage", "time_ms", "prediction", "response", "unseen")
TRUTH_COLUMNS = ("truth", "relabelled", "label", "label_ms", "delay_ms")
"""The CSV's further columns when the stream has ground truth."""


def write_labels(stream: PenguinStream, path: Union[str, Path]) -> None:
    """CSV of every request and orphan response: ``id,stage,time_ms,prediction,response,unseen``; ``response``
    is ``after`` (its line follows the request's), ``before``, ``none`` (never logged) or ``orphan`` (a
    response without a request: stage 0, its own time).

    A labelled stream adds `TRUTH_COLUMNS`: ``truth`` (the true species), ``relabelled`` (1: the concept stage
    changed it), ``label`` (``labelled``; ``never``; ``wrong_count``: never labelled, but sent a label message
    with two labels; ``unmatched``: a label message for no request, a row of its own with stage 0, its time,
    no prediction and response ``none``), and the label message's ``label_ms`` and ``delay_ms`` after its
    request (empty without one)."""
    labelled = stream.labelled
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(",".join(LABEL_COLUMNS + (TRUTH_COLUMNS if labelled else ())) + "\n")
        for i, request_id in enumerate(stream.ids.tolist()):
            arrival = "none" if stream.response_ms[i] < 0 else "before" if stream.early[i] else "after"
            handle.write(f"{request_id},{stream.stage[i]},{stream.time_ms[i]},{stream.predictions[i]},{arrival},"
                         f"{int(stream.unseen[i])}" + (_truth_cells(stream, i) if labelled else "") + "\n")
        for orphan, t, prediction in zip(stream.orphan_ids, stream.orphan_ms.tolist(), stream.orphan_predictions):
            handle.write(f"{orphan},0,{t},{prediction},orphan,0" + (",,0,,," if labelled else "") + "\n")
        for label_id, t, species in zip(stream.unmatched_label_ids, stream.unmatched_label_ms.tolist(),
                                        stream.unmatched_labels):
            handle.write(f"{label_id},0,{t},,none,0,{species},0,unmatched,{t},\n")


def _truth_cells(stream: PenguinStream, i: int) -> str:
    """A request's `TRUTH_COLUMNS`, each after a comma."""
    arrival = int(stream.label_ms[i]) if stream.label_ms[i] >= 0 else int(stream.wrong_count_ms[i])
    label = "labelled" if stream.label_ms[i] >= 0 else "wrong_count" if arrival >= 0 else "never"
    timing = f"{arrival},{arrival - int(stream.time_ms[i])}" if arrival >= 0 else ","
    return f",{stream.truth[i]},{int(stream.relabelled[i])},{label},{timing}"


def write_example(path: Path, format: str, seed: Optional[int] = None, stage_size: Optional[int] = None,
                  rate_scale: float = 1.0, ground_truth: bool = False) -> str:
    """The penguins example's staged stream, responses included (defaults unless given), in ``format`` at
    ``path``, with its labels (`STAGE_KINDS_WITH_LABELS`) when ``ground_truth`` (the spec has a ``ground_truth``
    section); says what it wrote."""
    stream = generate(seed=DEFAULT_SEED if seed is None else seed, stage_size=stage_size or DEFAULT_STAGE_SIZE,
                      rate=DEFAULT_RATE * rate_scale, format=format, labels=ground_truth)
    write_jsonl(stream, path)
    return (f"the staged penguins stream: {len(stream):,} requests and their responses"
            + (f", {label_messages(stream):,} label messages" if ground_truth else ""))


def label_messages(stream: PenguinStream) -> int:
    """The stream's label lines: one per labelled request, plus the wrong-count and unmatched ones."""
    return int((stream.label_ms >= 0).sum() + (stream.wrong_count_ms >= 0).sum()) + len(stream.unmatched_label_ids)


# ----------------------------------------------------------------------------------------------- CLI

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmon stream penguins",
        description="Generate the staged penguins inference stream (normal / island mix shifted / sex missing in "
                    "40%% / body mass +1 sd / normal) as JSON lines, the model's responses interleaved, plus a "
                    "labels CSV beside it. With --ground-truth: a concept stage (same inputs, 35%% of the "
                    "species changed) before the last normal one, and the true species as label messages, "
                    "1 s to 3 h after their requests, 5%% never labelled.")
    parser.add_argument("-o", "--output", default="penguins_stream.jsonl",
                        help="JSON-lines output file, '-' for stdout (default: %(default)s)")
    parser.add_argument("--format", choices=formats.FORMATS, default=DEFAULT_FORMAT,
                        help="wire format of each line (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--stage-size", type=int, default=DEFAULT_STAGE_SIZE,
                        help="requests per stage (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="Poisson arrival rate in requests/s, every stage (default: %(default)s)")
    parser.add_argument("--start", type=int, default=DEFAULT_START_MS,
                        help="start epoch in milliseconds (default: %(default)s, a fixed constant)")
    parser.add_argument("--training", type=Path, default=DEFAULT_TRAINING,
                        help="training CSV the instances are drawn from (default: examples/penguins/training.csv)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="the classifier's parameters (default: examples/penguins/model.json)")
    parser.add_argument("--responses", action=argparse.BooleanOptionalAction, default=True,
                        help="interleave the model's responses (default: on)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="labels CSV path (default: <output>.labels.csv; none when writing to stdout)")
    parser.add_argument("--ground-truth", action="store_true",
                        help="the labelled stream: the concept stage and the label messages (for a spec with "
                             "ground_truth, e.g. examples/penguins/ground-truth.yaml)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    began = time.perf_counter()
    try:
        stream = generate(seed=args.seed, stage_size=args.stage_size, rate=args.rate, start_ms=args.start,
                          format=args.format, responses=args.responses, training_csv=args.training,
                          model_json=args.model, labels=args.ground_truth)
        labels = iris.write_files(stream, args.output, args.labels, write_jsonl, write_labels)
    except (ValueError, OSError) as exc:
        print(f"mmon stream: error: {exc}", file=sys.stderr)
        return 1
    span_s = (stream.time_ms[-1] - stream.time_ms[0]) / 1000.0  # the requests' span
    responses = int(stream.answered.sum()) + len(stream.orphan_ids)
    print(f"mmon stream: {len(stream)} penguin requests, {responses} responses "
          + (f"and {label_messages(stream)} label messages " if stream.labelled else "")
          + f"({args.format}, seed {args.seed}) spanning {span_s:.0f} s -> {args.output}"
          + (f", labels -> {labels}" if labels else "") + f" in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return 0
