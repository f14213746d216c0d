"""A wave's design fields and answer codes as numpy columns: what the indicators read.

The estimation's projection of the wave's store (`analytics.store`): the store fetches
and parses each interview once, for the estimates and the exports alike; a refresh brings
the store up to date and then

* appends the accepted interviews the snapshot lacks whose ids are above its highest
  (the usual case: new interviews arrived), read from the store's newest segment;
* reconciles when the accepted ids differ otherwise: rows rejected in review or
  deleted are dropped, rows committed late with a lower id (or re-accepted) are added;
* rebuilds from the whole store when the wave's data epoch (bumped when stored answers
  are changed in place) or its identity differs.

Only the interviews that feed the estimates are included (those the store does not hold
back: never rejected ones, and those awaiting review when the survey asks for it). An
answer that is absent or not an integer code is stored as -9 (not asked). Each process
keeps the last snapshot of each wave it refreshed; a process that has none projects the
store (about a second for a million interviews, against the minutes of parsing the
store saves).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.exports.reader import Preparing
from analytics.indicators import NOT_ASKED
from analytics.store import ANSWER_PREFIX, ESTIMATION_ANSWERS, MOTIVES, WaveStore, store_root
from surveys.selectors import wave_token

MOTIVE_CODES = [f"M{k}" for k in range(1, 8)]
# Answer columns: what the indicators read, plus what calibration and the breakdowns need.
ANSWER_COLUMNS: list[str] = ESTIMATION_ANSWERS
COLUMNS: list[str] = [*ANSWER_COLUMNS, "M_MASK"]
DESIGN_COLUMNS = ["id", "weight", "stratum", "psu", "region_id", "urban_rural"]
# What a snapshot reads from the store.
STORE_COLUMNS = [
    *DESIGN_COLUMNS,
    *(ANSWER_PREFIX + name for name in ANSWER_COLUMNS),
    ANSWER_PREFIX + MOTIVES,
]
# Interviews projected at a time: large enough that numpy's calls dominate, small enough
# that the store's batches being converted stay small.
PROJECT_ROWS = 65_536


@dataclass
class Snapshot:
    """Columns of one wave's accepted interviews, sorted by submission id.

    ``columns`` holds ``id``, ``weight``, ``stratum`` and ``psu`` (integer codes into
    ``strata`` and ``psus``), ``region_id``, ``urban_rural`` and one int16 array per
    answer column (``COLUMNS``)."""

    wave_id: int
    epoch: int
    columns: dict[str, np.ndarray]
    strata: np.ndarray
    psus: np.ndarray
    # New when rows are rebuilt or removed, kept when rows are appended: state derived
    # from the rows (the cell sums) can be extended only within one lineage.
    lineage: int = 0
    # Identifies the wave beyond its id (its creation time): a file left by another
    # database whose wave had the same id is never mistaken for this wave's.
    token: int = 0

    @property
    def n(self) -> int:
        return int(self.columns["id"].shape[0])

    @property
    def max_id(self) -> int:
        return int(self.columns["id"].max()) if self.n else 0

    def fingerprint(self) -> str:
        """Which interviews are included (for ``ResultSet.data_version``)."""
        digest = hashlib.sha256(self.columns["id"].astype(np.int64).tobytes())
        digest.update(str(self.epoch).encode())
        return f"{self.n}:{self.max_id}:{digest.hexdigest()[:16]}"

    def stratum_labels(self) -> np.ndarray:
        return self.strata[self.columns["stratum"]]

    def psu_labels(self) -> np.ndarray:
        return self.psus[self.columns["psu"]]


def _empty(wave_id: int, epoch: int, token: int = 0) -> Snapshot:
    cols: dict[str, np.ndarray] = {
        "id": np.zeros(0, np.int64),
        "weight": np.zeros(0, float),
        "stratum": np.zeros(0, np.int32),
        "psu": np.zeros(0, np.int32),
        "region_id": np.zeros(0, np.int64),
        "urban_rural": np.zeros(0, np.int8),
    }
    cols.update({c: np.zeros(0, np.int16) for c in COLUMNS})
    return Snapshot(
        wave_id,
        epoch,
        cols,
        np.array([], dtype=str),
        np.array([], dtype=str),
        _new_lineage(),
        token,
    )


def _new_lineage() -> int:
    return int.from_bytes(os.urandom(7), "big")


# The last snapshot this process refreshed, by wave: a worker that recomputes a wave again
# reads only what arrived since.
_MEMORY: dict[int, Snapshot] = {}


def load(wave_id: int) -> Snapshot | None:
    """The snapshot this process last refreshed, if any (not checked against the store:
    `refresh` does that)."""
    return _MEMORY.get(wave_id)


def remove(wave_id: int) -> None:
    """Forget the wave's snapshot and its store: the next refresh reads every interview
    from the database again."""
    _MEMORY.pop(wave_id, None)
    for folder in store_root().glob(f"wave-{int(wave_id)}-*"):
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------- projection


def _codes(column: pa.ChunkedArray | None, n: int) -> np.ndarray:
    """Integer answer codes as int16; absent, fractional or out-of-range values -9."""
    if column is None or pa.types.is_list(column.type) or pa.types.is_null(column.type):
        return np.full(n, NOT_ASKED, dtype=np.int16)
    if pa.types.is_integer(column.type):
        whole = pc.fill_null(column, NOT_ASKED).to_numpy().astype(np.int64, copy=False)
        return np.where(np.abs(whole) < 32000, whole, NOT_ASKED).astype(np.int16)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # stored as text (a recoded question): numbers written as text count
        values = pd.to_numeric(pd.Series(column.to_pylist(), dtype=object), errors="coerce")
        numbers = values.to_numpy(dtype=float)
    else:
        numbers = pc.fill_null(pc.cast(column, pa.float64()), np.nan).to_numpy()
    usable = (np.abs(numbers) < 32000) & (numbers == np.round(numbers))
    return np.where(usable, numbers, NOT_ASKED).astype(np.int16)


def _motive_mask(column: pa.ChunkedArray | None, n: int) -> np.ndarray:
    """The select-multiple M as bits (M1 = 1, M2 = 2, M3 = 4, ...), -9 when none chosen."""
    out = np.zeros(n, dtype=np.int64)
    if column is not None and (
        pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    ):
        column = pc.utf8_split_whitespace(column)
    if column is not None and pa.types.is_list(column.type):
        lists = column.combine_chunks()
        bits = pc.index_in(pc.list_flatten(lists), value_set=pa.array(MOTIVE_CODES))
        rows = pc.list_parent_indices(lists).to_numpy()
        bit = pc.fill_null(bits, -1).to_numpy()
        chosen = bit >= 0
        np.bitwise_or.at(out, rows[chosen], np.left_shift(1, bit[chosen]))
    return np.where(out > 0, out, NOT_ASKED).astype(np.int16)


def _encode(values: pa.Array, vocab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of these labels in the vocabulary, extended by new labels in order of first
    appearance."""
    encoded = pc.dictionary_encode(values)
    labels = encoded.dictionary.to_pylist()
    index = {v: i for i, v in enumerate(vocab.tolist())}
    new = [v for v in labels if v not in index]
    for v in new:
        index[v] = len(index)
    lookup = np.asarray([index[v] for v in labels], dtype=np.int32)
    codes = lookup[encoded.indices.to_numpy()] if len(labels) else np.zeros(0, np.int32)
    return codes, np.asarray([*vocab.tolist(), *new], dtype=str)


def _to_columns(table: pa.Table) -> dict[str, np.ndarray]:
    """Typed column arrays from the store's rows (strata and PSUs still as labels)."""
    n = table.num_rows
    present = set(table.column_names)

    def column(name: str) -> pa.ChunkedArray | None:
        return table.column(name) if name in present else None

    cols = {
        "id": table.column("id").to_numpy().astype(np.int64, copy=False),
        "weight": table.column("weight").to_numpy().astype(float, copy=False),
        "region_id": table.column("region_id").to_numpy().astype(np.int64, copy=False),
        "urban_rural": table.column("urban_rural").to_numpy().astype(np.int8),
    }
    for name in ANSWER_COLUMNS:
        cols[name] = _codes(column(ANSWER_PREFIX + name), n)
    cols["M_MASK"] = _motive_mask(column(ANSWER_PREFIX + MOTIVES), n)
    return cols


def _concat(snapshot: Snapshot, tables: Iterable[pa.Table]) -> Snapshot:
    """The snapshot with these rows (ids it does not hold) added, in id order."""
    parts: list[dict[str, np.ndarray]] = []
    labels: dict[str, list[pa.ChunkedArray]] = {"stratum": [], "psu": []}
    for table in tables:
        if table.num_rows:
            parts.append(_to_columns(table))
            for name, pieces in labels.items():
                pieces.append(pc.cast(table.column(name), pa.string()))
    if not parts:
        return snapshot
    added = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    added["stratum"], strata = _encode(_joined(labels["stratum"]), snapshot.strata)
    added["psu"], psus = _encode(_joined(labels["psu"]), snapshot.psus)
    if not (np.diff(added["id"]) > 0).all():
        order = np.argsort(added["id"], kind="stable")
        added = {k: v[order] for k, v in added.items()}
    if snapshot.n == 0 or int(added["id"][0]) > snapshot.max_id:
        # new interviews: appended in order, no re-sorting of what is there
        grown = {k: np.concatenate([snapshot.columns[k], added[k]]) for k in snapshot.columns}
        return Snapshot(
            snapshot.wave_id, snapshot.epoch, grown, strata, psus, snapshot.lineage, snapshot.token
        )
    merged = {k: np.concatenate([snapshot.columns[k], added[k]]) for k in snapshot.columns}
    order = np.argsort(merged["id"], kind="stable")
    if (np.diff(merged["id"][order]) == 0).any():
        raise RuntimeError("snapshot would hold an interview twice")
    merged = {k: v[order] for k, v in merged.items()}
    return Snapshot(
        snapshot.wave_id, snapshot.epoch, merged, strata, psus, _new_lineage(), snapshot.token
    )


def _joined(pieces: list[pa.ChunkedArray]) -> pa.Array:
    return pa.chunked_array(
        [c for piece in pieces for c in piece.chunks], pa.string()
    ).combine_chunks()


def _keep(snapshot: Snapshot, mask: np.ndarray) -> Snapshot:
    cols = {k: v[mask] for k, v in snapshot.columns.items()}
    lineage = snapshot.lineage if mask.all() else _new_lineage()
    return Snapshot(
        snapshot.wave_id,
        snapshot.epoch,
        cols,
        snapshot.strata,
        snapshot.psus,
        lineage,
        snapshot.token,
    )


def refresh(
    wave_id: int,
    *,
    epoch: int = 0,
    token: int | None = None,
    preparing: Preparing | None = None,
) -> tuple[Snapshot, str]:
    """The up-to-date snapshot of a wave and how it was obtained (``"current"``,
    ``"appended"``, ``"reconciled"`` or ``"rebuilt"``); this process keeps it for the
    next refresh. `preparing` hears the progress of the store's update (interviews
    parsed, interviews to parse)."""
    if token is None:
        token = wave_token(wave_id)
    with WaveStore(wave_id, epoch=epoch).reading(preparing) as view:
        accepted = view.accepted_ids
        snapshot = load(wave_id)
        if snapshot is None or snapshot.epoch != epoch or snapshot.token != token:
            snapshot = _concat(
                _empty(wave_id, epoch, token),
                view.tables(accepted, STORE_COLUMNS, PROJECT_ROWS),
            )
            how = "rebuilt"
        else:
            ids = snapshot.columns["id"]
            if np.array_equal(ids, accepted):
                return snapshot, "current"
            kept = np.isin(ids, accepted, assume_unique=True)
            if not kept.all():
                snapshot = _keep(snapshot, kept)
            missing = np.setdiff1d(accepted, snapshot.columns["id"], assume_unique=True)
            appended = kept.all() and (not len(missing) or int(missing[0]) > snapshot.max_id)
            snapshot = _concat(snapshot, view.tables(missing, STORE_COLUMNS, PROJECT_ROWS))
            how = "appended" if appended else "reconciled"
    _MEMORY[wave_id] = snapshot
    return snapshot, how
