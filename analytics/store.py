"""The store of a wave: its interviews fetched and parsed once, as Arrow segments.

One columnar store per wave, read by both the estimation (`analytics.snapshot` projects
its design fields and answer codes) and the exports (`analytics.exports.batches`).
Parsing a million JSON documents is most of the cost of either (the database prints
about 100,000 rows a second, the parsing halves that), so each interview is parsed once:
every recomputation brings the store up to date before it reads, and so does every
export. Interviews never change once stored (review only accepts or rejects them; an
edit in place bumps the wave's data epoch, which starts a new store). Kept per wave
under ``MEDIA_ROOT/store/``, owner-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
from django.conf import settings
from django.db import connection, models

from analytics.breakdowns import ANSWER_COLUMNS as BREAKDOWN_COLUMNS
from analytics.exports.reader import (
    BATCH_ROWS,
    FETCHED_FIELDS,
    Preparing,
    RawBatch,
    fetch_batches,
    fetch_schema,
    live_raw_batches,
    parse_raw,
    return_freed_memory,
    wave_answers_schema,
)
from analytics.indicators import ITEM_COLUMNS
from analytics.private_files import private_file, private_folder
from surveys.models import Submission, Wave
from surveys.selectors import wave_token

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

STORE_FORMAT = 1
ANSWER_PREFIX = "answer:"  # stored answer columns, apart from the design fields
# The answers the estimation reads (`analytics.snapshot`): what the indicators read, plus
# what calibration and the breakdowns need, and the motives' select-multiple M. Stored
# even where no questionnaire version of the wave asks them (then empty), typed as codes
# where the questionnaire does not type them.
ESTIMATION_ANSWERS: list[str] = sorted(
    {c for c in ITEM_COLUMNS if c != "M_MASK"} | {"SEX", "AGE", "BIRTH_YEAR", *BREAKDOWN_COLUMNS}
)
MOTIVES = "M"


def store_schema(wave_id: int) -> pa.Schema:
    """The stored answer columns of a wave: its questionnaire versions' (as the exports
    print them), then any the estimation reads that those do not have."""
    schema = wave_answers_schema(wave_id)
    extra = [pa.field(name, pa.int64()) for name in ESTIMATION_ANSWERS if name not in schema.names]
    if MOTIVES not in schema.names:
        extra.append(pa.field(MOTIVES, pa.list_(pa.string())))
    return pa.schema([*schema, *extra])


# Interviews whose ids are looked up in one query while reconciling.
ID_CHUNK = 5_000
# Ids counted together when the store and the database disagree: only the ranges that
# differ are listed.
ID_RANGE = 16_384
# Segments a wave's store may hold before its smaller ones are merged.
MAX_SEGMENTS = 16


def store_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "store"


def _data_epoch(wave_id: int) -> int:
    from analytics.models import WaveComputation

    epoch = (
        WaveComputation.objects.filter(wave_id=wave_id).values_list("data_epoch", flat=True).first()
    )
    return int(epoch or 0)


@dataclass
class _Segment:
    path: Path
    ids: np.ndarray  # int64, in the segment's row order
    offsets: np.ndarray  # row where each record batch starts, then the row count


@dataclass
class WaveStore:
    """A wave's interviews, fetched and parsed once, as append-only Arrow IPC segments.

    Every interview of the wave is stored whatever its review status (review can accept
    a rejected interview again); readers leave out those not feeding the estimates
    (`held_back_ids`). The folder's name holds what the stored columns depend on (the
    store format, the wave's creation time, its data epoch, bumped when stored answers
    are edited in place, and the answer columns of its questionnaire versions): when any
    of them changes, a new folder is filled and the old one removed.

    Segments are written to a temporary name and renamed, with their ids beside them in
    a small ``.npz`` written first, so a reader never sees half a segment. Two processes
    bringing the store up to date at once may both append the same interviews; readers
    keep the first copy of each id. Interviews deleted from the database are recorded in
    ``deleted-*.npy`` files and left out. Whether the store holds exactly the database's
    interviews is checked with one aggregate query (count and sum of ids).
    """

    wave_id: int
    # The wave's data epoch; read from its computation record when not given.
    epoch: int | None = None
    schema: pa.Schema = field(init=False)
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.schema = store_schema(self.wave_id)
        fetched = fetch_schema()
        columns = fetched.remove(len(fetched) - 1)
        key = hashlib.sha256(
            f"{STORE_FORMAT}|{columns.to_string()}|{self.schema.to_string()}".encode()
        ).hexdigest()[:16]
        token = wave_token(self.wave_id)
        if self.epoch is None:
            self.epoch = _data_epoch(self.wave_id)
        self.folder = store_root() / f"wave-{self.wave_id}-{token}-{self.epoch}-{key}"

    # ---------------------------------------------------------------- writing

    def update(self, progress: Preparing | None = None) -> int:
        """Append the wave's interviews the store lacks; returns how many were added.

        Records the interviews deleted from the database, fetches those committed late
        (below the highest stored id), then the newer ones."""
        return_freed_memory()
        private_folder(store_root())
        private_folder(self.folder)
        self._remove_stale_folders()
        segments = self._segments()
        cached = _Positions(segments).unique_ids
        deleted = self._deleted()
        present = np.setdiff1d(cached, deleted, assume_unique=True) if len(deleted) else cached
        upto = int(cached[-1]) if len(cached) else 0
        wave_rows = Submission.objects.filter(wave_id=self.wave_id)
        added = 0
        missing = np.zeros(0, np.int64)
        if upto:
            totals = wave_rows.filter(id__lte=upto).aggregate(
                count=models.Count("id"), total=models.Sum("id")
            )
            if (totals["count"], totals["total"] or 0) != (len(present), int(present.sum())):
                in_database = self._ids_in_database(present, upto)
                if len(deleted) and np.isin(deleted, in_database).any():
                    # An interview deleted before is back under its id (restored from a
                    # backup, say): its stored copy may be stale, so read everything again.
                    shutil.rmtree(self.folder, ignore_errors=True)
                    return self.update(progress)
                gone = np.setdiff1d(present, in_database)
                if len(gone):
                    self._write_deleted(gone)
                missing = np.setdiff1d(in_database, cached)
        newer = wave_rows.filter(id__gt=upto)
        total = len(missing) + (newer.count() if progress else 0)

        def parsed(rows: int) -> None:
            if progress:
                progress(added + rows, max(total, added + rows))

        for start in range(0, len(missing), ID_CHUNK):
            chunk = missing[start : start + ID_CHUNK].tolist()
            added += self._append(wave_rows.filter(id__in=chunk), parsed)
        added += self._append(newer, parsed)
        return added

    def _ids_in_database(self, present: np.ndarray, upto: int) -> np.ndarray:
        """The wave's ids up to `upto` in the database, in the ranges of ids (of
        ID_RANGE each) whose count or sum differs from `present`; the present ids of the
        other ranges, which agree, stand for theirs. One grouped aggregate, then the ids
        of the few ranges a deletion or a late commit touched, not the whole wave's."""
        rows = Submission.objects.filter(wave_id=self.wave_id, id__lte=upto)
        with connection.cursor() as cursor:
            sql, params = rows.values("id").query.sql_with_params()
            cursor.execute(
                f"SELECT id / {ID_RANGE} AS k, count(*), sum(id) FROM ({sql}) ids GROUP BY k",
                params,
            )
            database = {int(k): (int(n), int(total)) for k, n, total in cursor.fetchall()}
        keys = present // ID_RANGE  # ascending, as `present` is
        starts = np.flatnonzero(np.diff(keys, prepend=-1)) if len(keys) else np.zeros(0, int)
        counts = np.diff(np.append(starts, len(keys)))
        sums = np.add.reduceat(present, starts) if len(keys) else np.zeros(0, np.int64)
        mine = {
            int(k): (int(n), int(total))
            for k, n, total in zip(keys[starts], counts, sums, strict=True)
        }
        differing = [k for k in database.keys() | mine.keys() if database.get(k) != mine.get(k)]
        agreed = present[~np.isin(keys, differing)]
        found = [agreed]
        for key in differing:
            found.append(
                np.fromiter(
                    rows.filter(id__gte=key * ID_RANGE, id__lt=(key + 1) * ID_RANGE)
                    .order_by()
                    .values_list("id", flat=True),
                    dtype=np.int64,
                )
            )
        return np.sort(np.concatenate(found))

    def _append(
        self,
        submissions: models.QuerySet[Submission],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Fetch, parse and store these interviews as one segment."""
        return self._write_segment(self._fetched(submissions), progress)

    def _fetched(self, submissions: models.QuerySet[Submission]) -> Iterator[pa.Table]:
        """These interviews, fetched and parsed, as tables of the stored columns."""
        for record_batch in fetch_batches(submissions, BATCH_ROWS):
            yield self._to_stored_table(parse_raw(record_batch, self.schema))

    def _write_segment(
        self, tables: Iterator[pa.Table], progress: Callable[[int], None] | None = None
    ) -> int:
        """Store tables of stored columns as one segment; returns its row count.

        `progress` hears the rows stored so far, after each table."""
        name = f"seg-{os.urandom(8).hex()}"
        tmp = self.folder / f".{name}.arrow.part"
        ids: list[np.ndarray] = []
        offsets = [0]
        try:
            with pa.OSFile(str(private_file(tmp)), "wb") as sink:
                writer: pa.ipc.RecordBatchFileWriter | None = None
                for table in tables:
                    if writer is None:
                        writer = pa.ipc.new_file(
                            sink,
                            table.schema,
                            options=pa.ipc.IpcWriteOptions(compression="lz4"),
                        )
                    writer.write_batch(table.combine_chunks().to_batches()[0])
                    ids.append(table.column("id").to_numpy())
                    offsets.append(offsets[-1] + table.num_rows)
                    if progress:
                        progress(offsets[-1])
                if writer is None:
                    return 0
                writer.close()
            np.savez(
                private_file(self.folder / f"{name}.npz"),
                ids=np.concatenate(ids),
                offsets=np.asarray(offsets, dtype=np.int64),
            )
            os.replace(tmp, self.folder / f"{name}.arrow")
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return offsets[-1]

    def compact(self) -> bool:
        """Merge the smaller segments into one once there are more than MAX_SEGMENTS, or
        when two processes appended the same interviews.

        Every recomputation may append a segment of a few interviews; merging keeps the
        number of files small. The merged segment is in place before the others are
        removed, and readers hold their files open, so a reading export is undisturbed.
        """
        segments = self._segments()
        if len(segments) < 2:
            return False
        stored = sum(len(segment.ids) for segment in segments)
        distinct = len(np.unique(np.concatenate([segment.ids for segment in segments])))
        if len(segments) <= MAX_SEGMENTS and distinct == stored:
            return False
        largest = max(segments, key=lambda segment: len(segment.ids))
        smaller = [segment for segment in segments if segment is not largest]
        positions = _Positions(smaller)
        order = positions.first[~np.isin(positions.unique_ids, largest.ids)]
        with _BatchReader(smaller) as reader:
            self._write_segment(
                reader.take(positions.segment_of[chunk], positions.row_of[chunk])
                for chunk in _chunks(order, BATCH_ROWS)
            )
        for segment in smaller:
            segment.path.unlink(missing_ok=True)
            segment.path.with_suffix(".npz").unlink(missing_ok=True)
        return True

    def _to_stored_table(self, raw: RawBatch) -> pa.Table:
        arrays = [raw.ids, *(raw.fetched[name] for name in FETCHED_FIELDS), *raw.answers.columns]
        names = [
            "id",
            *FETCHED_FIELDS,
            *(ANSWER_PREFIX + name for name in raw.answers.column_names),
        ]
        return pa.Table.from_arrays(
            [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays],
            names=names,
        )

    def _write_deleted(self, ids: np.ndarray) -> None:
        name = f"deleted-{os.urandom(8).hex()}"
        tmp = self.folder / f".{name}.npy.part"
        with open(private_file(tmp), "wb") as out:
            np.save(out, ids.astype(np.int64))
        os.replace(tmp, self.folder / f"{name}.npy")

    def _remove_stale_folders(self) -> None:
        """Folders of this wave under another key are left by an older state: remove them."""
        for other in store_root().glob(f"wave-{self.wave_id}-*"):
            if other != self.folder:
                shutil.rmtree(other, ignore_errors=True)

    # ---------------------------------------------------------------- reading

    def _segments(self) -> list[_Segment]:
        """The segments, by first id."""
        return self._stable(self._list_segments)

    def _list_segments(self) -> list[_Segment]:
        segments = []
        for path in self.folder.glob("seg-*.arrow"):
            with np.load(path.with_suffix(".npz")) as sidecar:
                segments.append(_Segment(path, sidecar["ids"], sidecar["offsets"]))
        return sorted(segments, key=lambda segment: int(segment.ids[0]))

    def _stable(self, read: Callable[[], _T]) -> _T:
        """`read`, again when a segment vanished under it: merged by a compaction, whose
        merged segment was in place before the others were removed."""
        for _attempt in range(5):
            try:
                return read()
            except FileNotFoundError:
                continue
        raise OSError(f"the store of wave {self.wave_id} keeps changing; try again")

    def _deleted(self) -> np.ndarray:
        parts = [np.load(path) for path in sorted(self.folder.glob("deleted-*.npy"))]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def raw_batches(
        self,
        schema: pa.Schema,
        *,
        batch_size: int = BATCH_ROWS,
        limit: int | None = None,
        preparing: Preparing | None = None,
    ) -> Iterator[RawBatch]:
        """The wave's accepted interviews in id order, in the columns of `schema`.

        Brings the store up to date first. A selection whose answer columns disagree in
        type with the store's (which the import of questionnaires prevents) is read live.
        """
        for name in schema.names:
            index = self.schema.get_field_index(name)
            if index >= 0 and self.schema.field(index).type != schema.field(name).type:
                logger.warning("store of wave %s: %s differs in type", self.wave_id, name)
                accepted = Submission.objects.feeding_estimates().filter(wave_id=self.wave_id)
                yield from live_raw_batches(accepted, schema, batch_size=batch_size, limit=limit)
                return
        reader = self._current(preparing)
        with reader, self._damage_drops_the_store():
            yield from self._read(
                reader, schema, self._deleted(), self.held_back_ids(), batch_size, limit
            )

    @contextlib.contextmanager
    def reading(self, preparing: Preparing | None = None) -> Iterator[StoreView]:
        """The store brought up to date, open for reading by id (what the estimation
        reads: `StoreView.accepted_ids`, `StoreView.tables`)."""
        reader = self._current(preparing)
        with reader, self._damage_drops_the_store():
            yield StoreView(reader, np.union1d(self._deleted(), self.held_back_ids()))

    def held_back_ids(self) -> np.ndarray:
        """The wave's interviews that feed no estimate and no export: rejected, or
        awaiting a review their survey asks for (few: a partial index finds them)."""
        return np.fromiter(
            Submission.objects.held_back()
            .filter(wave_id=self.wave_id)
            .values_list("id", flat=True),
            dtype=np.int64,
        )

    def _current(self, preparing: Preparing | None) -> _BatchReader:
        """Bring the store up to date and open its segments; an unreadable store (a disk
        full, a file damaged) is dropped and rebuilt."""
        try:
            self.update(preparing)
            return self._open()
        except (OSError, ValueError, pa.ArrowException):
            logger.exception("store of wave %s unreadable; rebuilding", self.wave_id)
            shutil.rmtree(self.folder, ignore_errors=True)
            self.update(preparing)
            return self._open()

    @contextlib.contextmanager
    def _damage_drops_the_store(self) -> Iterator[None]:
        """A batch damaged past its file's footer fails this read (an export may have
        written rows already) and drops the store, so the next read rebuilds it."""
        try:
            yield
        except (ValueError, pa.ArrowException):
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def _open(self) -> _BatchReader:
        """The segments, opened (see `_stable`)."""
        return self._stable(lambda: _BatchReader(self._list_segments()))

    def _read(
        self,
        reader: _BatchReader,
        schema: pa.Schema,
        deleted: np.ndarray,
        rejected: np.ndarray,
        batch_size: int,
        limit: int | None,
    ) -> Iterator[RawBatch]:
        segments = reader.segments
        if not segments:
            return
        if _in_id_order(segments):
            excluded = np.union1d(deleted, rejected)
            yield from self._read_in_order(reader, schema, excluded, limit)
            return
        # Segments that overlap (two processes appended the same interviews) or interleave
        # (interviews committed late): gather rows by their place in id order, keeping
        # the first copy of each id and leaving out deleted and rejected interviews.
        positions = _Positions(segments)
        keep = np.ones(len(positions.unique_ids), dtype=bool)
        for excluded in (deleted, rejected):
            if len(excluded):
                keep &= ~np.isin(positions.unique_ids, excluded)
        order = positions.first[keep]
        if limit is not None:
            order = order[:limit]
        for chunk in _chunks(order, batch_size):
            table = reader.take(positions.segment_of[chunk], positions.row_of[chunk])
            yield self._from_stored_table(table, schema)

    def _read_in_order(
        self,
        reader: _BatchReader,
        schema: pa.Schema,
        excluded: np.ndarray,
        limit: int | None,
    ) -> Iterator[RawBatch]:
        """The usual case, segment after segment and batch after batch, as stored."""
        remaining = limit
        for index, segment in enumerate(reader.segments):
            keep = ~np.isin(segment.ids, excluded) if len(excluded) else None
            for number in range(len(segment.offsets) - 1):
                if remaining is not None and remaining <= 0:
                    return
                batch = reader.batch(index, number)
                if keep is not None:
                    mask = keep[segment.offsets[number] : segment.offsets[number + 1]]
                    if not mask.all():
                        batch = batch.filter(pa.array(mask))
                if remaining is not None:
                    batch = batch.slice(0, remaining)
                    remaining -= batch.num_rows
                if batch.num_rows:
                    yield self._from_stored_table(pa.Table.from_batches([batch]), schema)

    def _from_stored_table(self, table: pa.Table, schema: pa.Schema) -> RawBatch:
        present = set(table.column_names)
        answers = pa.table(
            {
                f.name: table.column(ANSWER_PREFIX + f.name).combine_chunks()
                if ANSWER_PREFIX + f.name in present
                else pa.nulls(table.num_rows, type=f.type)
                for f in schema
            },
            schema=schema,
        )
        return RawBatch(
            ids=table.column("id").combine_chunks(),
            fetched={name: table.column(name).combine_chunks() for name in FETCHED_FIELDS},
            answers=answers,
        )


class StoreView:
    """An up-to-date store, open: its accepted interviews' ids and their columns."""

    def __init__(self, reader: _BatchReader, excluded: np.ndarray) -> None:
        self._reader = reader
        self._positions = _Positions(reader.segments)
        unique = self._positions.unique_ids
        self.accepted_ids: np.ndarray = (
            unique[~np.isin(unique, excluded)] if len(excluded) else unique
        )

    def tables(
        self, ids: np.ndarray, columns: list[str], batch_size: int = BATCH_ROWS
    ) -> Iterator[pa.Table]:
        """These columns (those the store has) of these interviews, accepted ids in
        ascending order, in that order."""
        if not len(ids):
            return
        unique = self._positions.unique_ids
        at = np.minimum(np.searchsorted(unique, ids), len(unique) - 1)
        if (unique[at] != ids).any():
            raise ValueError("asked for interviews the store does not hold")
        present = set(self._reader.column_names)
        wanted = [name for name in columns if name in present]
        order = self._positions.first[at]
        for chunk in _chunks(order, batch_size):
            rows = self._reader.take(
                self._positions.segment_of[chunk], self._positions.row_of[chunk]
            )
            yield rows.select(wanted)


def _in_id_order(segments: list[_Segment]) -> bool:
    """Whether the segments, one after another, hold strictly increasing ids."""
    last = -1
    for segment in segments:
        if segment.ids[0] <= last or (len(segment.ids) > 1 and (np.diff(segment.ids) <= 0).any()):
            return False
        last = int(segment.ids[-1])
    return True


@dataclass
class _Positions:
    """Where each distinct id of some segments lies: its first copy's place in the
    concatenated segments, and that place as (segment, row)."""

    unique_ids: np.ndarray
    first: np.ndarray
    segment_of: np.ndarray
    row_of: np.ndarray

    def __init__(self, segments: list[_Segment]) -> None:
        empty = [np.zeros(0, np.int64)]
        ids = np.concatenate([s.ids for s in segments] or empty)
        self.segment_of = np.concatenate(
            [np.full(len(s.ids), i, dtype=np.int32) for i, s in enumerate(segments)] or empty
        ).astype(np.int32)
        self.row_of = np.concatenate(
            [np.arange(len(s.ids), dtype=np.int64) for s in segments] or empty
        )
        if len(ids) < 2 or (np.diff(ids) > 0).all():
            # the usual case: segments in id order, no copies (no hashing of a million ids)
            self.unique_ids, self.first = ids, np.arange(len(ids))
        else:
            self.unique_ids, self.first = np.unique(ids, return_index=True)


def _chunks(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


class _BatchReader:
    """Record batches of cached segments, by (segment, batch) or rows by (segment, row).

    Opens every segment at once, so a compaction that removes them meanwhile does not
    disturb the reading, and keeps the few batches read last, so rows of one batch spread
    over two chunks of the output (or committed late, in a later segment) are read once.
    """

    KEEP = 4

    def __init__(self, segments: list[_Segment]) -> None:
        self.segments = segments
        self._sources: list[pa.NativeFile] = []
        try:
            for segment in segments:
                self._sources.append(pa.OSFile(str(segment.path)))
        except BaseException:
            self.close()
            raise
        self._readers = [pa.ipc.open_file(source) for source in self._sources]
        self._batches: OrderedDict[tuple[int, int], pa.RecordBatch] = OrderedDict()

    def __enter__(self) -> _BatchReader:
        return self

    @property
    def column_names(self) -> list[str]:
        return list(self._readers[0].schema.names) if self._readers else []

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch(self, segment: int, number: int) -> pa.RecordBatch:
        key = (segment, number)
        if key in self._batches:
            self._batches.move_to_end(key)
            return self._batches[key]
        batch = self._readers[segment].get_batch(number)
        self._batches[key] = batch
        if len(self._batches) > self.KEEP:
            self._batches.popitem(last=False)
        return batch

    def take(self, segments: np.ndarray, rows: np.ndarray) -> pa.Table:
        """The rows, in the order given."""
        batch_numbers = np.empty(len(rows), dtype=np.int64)
        first, last = int(segments[0]), int(segments[-1])
        for segment in (first,) if first == last and (segments == first).all() else set(segments):
            mask = segments == segment
            offsets = self.segments[segment].offsets
            batch_numbers[mask] = np.searchsorted(offsets, rows[mask], side="right") - 1
        pieces = []
        # Runs of consecutive rows from one batch, taken in one call each.
        keys = segments.astype(np.int64) * (1 << 32) + batch_numbers
        boundaries = np.flatnonzero(np.diff(keys)) + 1
        for run in np.split(np.arange(len(rows)), boundaries):
            segment, number = int(segments[run[0]]), int(batch_numbers[run[0]])
            start = self.segments[segment].offsets[number]
            batch = self.batch(segment, number)
            wanted = rows[run] - start
            if (np.diff(wanted) == 1).all():  # consecutive rows: a slice
                pieces.append(batch.slice(int(wanted[0]), len(wanted)))
            else:
                pieces.append(batch.take(pa.array(wanted)))
        return pa.Table.from_batches(pieces)

    def close(self) -> None:
        for source in self._sources:
            source.close()
        self._sources.clear()
        self._batches.clear()


def update_wave_store(wave_id: int) -> int:
    """Bring a wave's store up to date and merge its small segments (the worker calls
    this a while after recomputing, when the runs of that while have each appended a
    segment). Returns how many interviews were added."""
    if not Wave.objects.filter(pk=wave_id).exists():
        return 0
    store = WaveStore(wave_id)
    added = store.update()
    store.compact()
    return added
