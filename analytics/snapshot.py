"""A per-wave columnar snapshot of the design fields and answer codes the indicators read.

Reading a million answers out of JSON on every recomputation would dominate its cost, so
each wave keeps a numpy snapshot under ``MEDIA_ROOT/snapshots/``, named after the wave
and the highest submission id it includes. A refresh

* appends the accepted interviews whose id is above that highest id (the usual case:
  new interviews arrived), with one SQL query that extracts the codes in the database
  (jsonb operators on PostgreSQL, ``json_extract`` on SQLite), never model instances;
* reconciles the set of ids when the cheap fingerprint (count and sum of ids at or below
  the highest id) disagrees: rows rejected in review or deleted are dropped, rows
  committed late with a lower id (or re-accepted) are fetched;
* rebuilds from scratch when the snapshot format, its column list or the wave's data
  epoch (bumped when stored answers are changed in place) differs.

Only the interviews that feed the estimates are included (`Submission.objects.
feeding_estimates`: never rejected ones, and those awaiting review when the survey asks
for it). An answer that is absent or not an integer code is stored as -9 (not asked).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection

from analytics.breakdowns import ANSWER_COLUMNS as BREAKDOWN_COLUMNS
from analytics.indicators import ITEM_COLUMNS, NOT_ASKED
from analytics.private_files import private_folder
from surveys.models import Submission
from surveys.selectors import estimates_condition_sql, wave_token

SNAPSHOT_FORMAT = 3
MOTIVE_CODES = [f"M{k}" for k in range(1, 8)]
# Answer columns: what the indicators read, plus what calibration and the breakdowns need.
ANSWER_COLUMNS: list[str] = sorted(
    {c for c in ITEM_COLUMNS if c != "M_MASK"} | {"SEX", "AGE", "BIRTH_YEAR", *BREAKDOWN_COLUMNS}
)
COLUMNS: list[str] = [*ANSWER_COLUMNS, "M_MASK"]
DESIGN_COLUMNS = ["id", "weight", "stratum", "psu", "region_id", "urban_rural"]


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


def snapshot_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "snapshots"


def _files(wave_id: int) -> list[Path]:
    return sorted(snapshot_dir().glob(f"wave-{wave_id}-upto-*.npz"))


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


# The last snapshot each process read or wrote, by wave: a worker that recomputes a wave
# again does not read its file back.
_MEMORY: dict[int, tuple[tuple[str, int, int], Snapshot]] = {}


def _identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_mtime_ns, stat.st_size)


def load(wave_id: int) -> Snapshot | None:
    """The stored snapshot, or None when absent or written in another format."""
    files = _files(wave_id)
    if not files:
        return None
    remembered = _MEMORY.get(wave_id)
    try:
        identity = _identity(files[-1])
    except OSError:
        return None
    if remembered is not None and remembered[0] == identity:
        return remembered[1]
    try:
        with np.load(files[-1], allow_pickle=False) as data:
            meta = data["meta"]
            names = list(data["column_names"])
            if int(meta[0]) != SNAPSHOT_FORMAT or names != [*DESIGN_COLUMNS, *COLUMNS]:
                return None
            cols = {name: data[f"c_{name}"] for name in names}
            loaded = Snapshot(
                wave_id,
                int(meta[1]),
                cols,
                data["strata"],
                data["psus"],
                int(meta[2]),
                int(meta[3]),
            )
    except (OSError, KeyError, ValueError):
        return None
    _MEMORY[wave_id] = (identity, loaded)
    return loaded


def save(snapshot: Snapshot) -> Path:
    """Write atomically (temporary file, then rename) and remove older files of the wave."""
    directory = private_folder(snapshot_dir())
    target = directory / f"wave-{snapshot.wave_id}-upto-{snapshot.max_id:012d}.npz"
    arrays = {f"c_{k}": v for k, v in snapshot.columns.items()}
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")  # owner-only (0o600)
    with os.fdopen(fd, "wb") as handle:
        np.savez(
            handle,
            meta=np.array(
                [SNAPSHOT_FORMAT, snapshot.epoch, snapshot.lineage, snapshot.token], dtype=np.int64
            ),
            column_names=np.array([*DESIGN_COLUMNS, *COLUMNS]),
            strata=snapshot.strata.astype(str),
            psus=snapshot.psus.astype(str),
            **arrays,  # type: ignore[arg-type]
        )
    os.replace(tmp, target)
    for old in _files(snapshot.wave_id):
        if old != target:
            old.unlink(missing_ok=True)
    _MEMORY[snapshot.wave_id] = (_identity(target), snapshot)
    return target


def remove(wave_id: int) -> None:
    for path in _files(wave_id):
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------- extraction


def _select_sql(where: str) -> str:
    table = Submission._meta.db_table
    source = f"{table} s"
    if connection.vendor == "postgresql":
        # jsonb_to_record parses each interview's answers once; operators per item would
        # decompress the stored value again for every one of the ~60 items.
        record = ", ".join([*(f'"{c}" text' for c in ANSWER_COLUMNS), '"M" jsonb'])
        source = f"{table} s, jsonb_to_record(s.answers) AS r({record})"

        def item(name: str) -> str:
            return f'r."{name}"'  # text; converted (or set to -9) when the CSV is read

        arr = 'r."M"'
        bits_array = " + ".join(
            f"({arr} ? '{m}')::int * {1 << i}" for i, m in enumerate(MOTIVE_CODES)
        )
        bits_text = " + ".join(
            f"(string_to_array({arr} #>> '{{}}', ' ') @> ARRAY['{m}'])::int * {1 << i}"
            for i, m in enumerate(MOTIVE_CODES)
        )
        mask = (
            f"CASE jsonb_typeof({arr}) WHEN 'array' THEN {bits_array} "
            f"WHEN 'string' THEN {bits_text} END"
        )
    else:

        def item(name: str) -> str:
            path = f"'$.\"{name}\"'"
            ext = f"json_extract(s.answers, {path})"
            return (
                f"CASE json_type(s.answers, {path}) WHEN 'integer' THEN {ext} "
                f"WHEN 'real' THEN CAST(round({ext}) AS INTEGER) "
                f"WHEN 'text' THEN CASE WHEN CAST(CAST({ext} AS INTEGER) AS TEXT) = {ext} "
                f"THEN CAST({ext} AS INTEGER) END END"
            )

        mask = "json_extract(s.answers, '$.M')"  # decoded in Python below
    fields = ", ".join(
        [
            "s.id",
            "s.weight",
            "s.stratum",
            "s.psu",
            "s.region_id",
            "s.urban_rural",
            *(item(c) for c in ANSWER_COLUMNS),
            mask,
        ]
    )
    # No ORDER BY: sorting a million wide rows spills to disk; ids are sorted in numpy.
    return f"SELECT {fields} FROM {source} WHERE {where}"


def _mask_from_text(values: pd.Series) -> np.ndarray:
    """SQLite: M comes back as JSON text (an array) or a space-separated string."""
    text = values.fillna("").astype(str)
    out = np.zeros(len(text), dtype=np.int64)
    for i, code in enumerate(MOTIVE_CODES):
        hit = text.str.contains(rf'(?:^|[\s"]){code}(?:$|[\s"])', regex=True)
        out |= hit.to_numpy() << i
    return out


def _fetch(where: str) -> pd.DataFrame:
    names = [*DESIGN_COLUMNS, *COLUMNS]
    sql = _select_sql(where)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            import io

            buffer = io.BytesIO()
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    buffer.write(block)
            buffer.seek(0)
            if not buffer.getbuffer().nbytes:
                return pd.DataFrame(columns=names)
            frame = pd.read_csv(
                buffer,
                header=None,
                names=names,
                dtype={"stratum": str, "psu": str},
                keep_default_na=False,
                na_values={c: [""] for c in COLUMNS},
            )
        else:
            cursor.execute(sql)
            frame = pd.DataFrame(cursor.fetchall(), columns=names)
            if len(frame):
                frame["M_MASK"] = _mask_from_text(frame["M_MASK"])
    return frame


def _accepted_where(wave_id: int, *, above: int | None = None, ids: list[int] | None = None) -> str:
    where = f"s.wave_id = {int(wave_id)} AND {estimates_condition_sql(wave_id, 's')}"
    if above is not None:
        where += f" AND s.id > {int(above)}"
    if ids is not None:
        where += f" AND s.id IN ({', '.join(str(int(i)) for i in ids)})"
    return where


def _to_columns(
    frame: pd.DataFrame, strata: np.ndarray, psus: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Typed column arrays from a fetched frame, extending the stratum/PSU vocabularies."""

    def encode(values: pd.Series, vocab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = {v: i for i, v in enumerate(vocab.tolist())}
        new = [v for v in pd.unique(values.astype(str)) if v not in index]
        for v in new:
            index[v] = len(index)
        codes = values.astype(str).map(index).to_numpy(dtype=np.int32)
        return codes, np.asarray([*vocab.tolist(), *new], dtype=str)

    stratum, strata = encode(frame["stratum"], strata)
    psu, psus = encode(frame["psu"], psus)
    cols = {
        "id": frame["id"].to_numpy(dtype=np.int64),
        "weight": frame["weight"].to_numpy(dtype=float),
        "stratum": stratum,
        "psu": psu,
        "region_id": frame["region_id"].to_numpy(dtype=np.int64),
        "urban_rural": frame["urban_rural"].to_numpy(dtype=np.int8),
    }
    for c in COLUMNS:
        values = pd.to_numeric(frame[c], errors="coerce")
        values = values.where((values.abs() < 32000) & (values == values.round()))
        cols[c] = values.fillna(NOT_ASKED).to_numpy(dtype=np.int16)
    cols["M_MASK"] = np.where(cols["M_MASK"] > 0, cols["M_MASK"], NOT_ASKED).astype(np.int16)
    return cols, strata, psus


def _concat(snapshot: Snapshot, frame: pd.DataFrame) -> Snapshot:
    if not len(frame):
        return snapshot
    frame = frame.sort_values("id", kind="stable")
    cols, strata, psus = _to_columns(frame, snapshot.strata, snapshot.psus)
    if snapshot.n == 0 or int(cols["id"][0]) > snapshot.max_id:
        # new interviews: appended in order, no re-sorting of what is there
        grown = {k: np.concatenate([snapshot.columns[k], cols[k]]) for k in snapshot.columns}
        return Snapshot(
            snapshot.wave_id, snapshot.epoch, grown, strata, psus, snapshot.lineage, snapshot.token
        )
    merged = {k: np.concatenate([snapshot.columns[k], cols[k]]) for k in snapshot.columns}
    order = np.argsort(merged["id"], kind="stable")
    if (np.diff(merged["id"][order]) == 0).any():
        raise RuntimeError("snapshot would hold an interview twice")
    merged = {k: v[order] for k, v in merged.items()}
    appended = len(snapshot.columns["id"]) == 0 or bool(
        order[: snapshot.n].tolist() == list(range(snapshot.n))
    )
    lineage = snapshot.lineage if appended else _new_lineage()
    return Snapshot(snapshot.wave_id, snapshot.epoch, merged, strata, psus, lineage, snapshot.token)


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


def _database_fingerprint(wave_id: int, upto: int) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(sum(s.id), 0) FROM {Submission._meta.db_table} s "
            f"WHERE {_accepted_where(wave_id)} AND s.id <= %s",
            [upto],
        )
        count, total = cursor.fetchone()
    return int(count), int(total)


def _accepted_ids(wave_id: int, upto: int) -> np.ndarray:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id FROM {Submission._meta.db_table} s "
            f"WHERE {_accepted_where(wave_id)} AND s.id <= %s",
            [upto],
        )
        return np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)


def refresh(
    wave_id: int, *, epoch: int = 0, save_changes: bool = True, token: int | None = None
) -> tuple[Snapshot, str]:
    """The up-to-date snapshot of a wave and how it was obtained
    (``"current"``, ``"appended"``, ``"reconciled"`` or ``"rebuilt"``). Saves it when
    it changed, unless ``save_changes`` is off (the caller saves it later)."""
    if token is None:
        token = wave_token(wave_id)
    snapshot = load(wave_id)
    how = "current"
    if snapshot is None or snapshot.epoch != epoch or snapshot.token != token:
        snapshot = _concat(_empty(wave_id, epoch, token), _fetch(_accepted_where(wave_id)))
        how = "rebuilt"
    else:
        upto = snapshot.max_id
        ids = snapshot.columns["id"]
        if _database_fingerprint(wave_id, upto) != (len(ids), int(ids.sum())):
            present = _accepted_ids(wave_id, upto)
            snapshot = _keep(snapshot, np.isin(ids, present))
            missing = np.setdiff1d(present, snapshot.columns["id"])
            for start in range(0, len(missing), 5000):
                chunk = missing[start : start + 5000].tolist()
                snapshot = _concat(snapshot, _fetch(_accepted_where(wave_id, ids=chunk)))
            how = "reconciled"
        new = _fetch(_accepted_where(wave_id, above=upto))
        if len(new):
            snapshot = _concat(snapshot, new)
            how = "appended" if how == "current" else how
    if how != "current" and save_changes:
        save(snapshot)
    return snapshot, how
