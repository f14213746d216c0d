"""The codebook's columns of a selection's interviews, from either source of `reader`.

`iter_microdata_batches` turns the live reader or a wave's store (`analytics.store`) into the codebook's
columns: special codes in place of missing answers, select_multiple options as 0/1,
enumerators numbered within the selection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics.exports.codebook import NOT_APPLICABLE, NOT_ASKED, Codebook, Variable
from analytics.exports.reader import (
    BATCH_ROWS,
    DESIGN_SOURCES,
    QUERY_FIELDS,
    MicrodataSelection,
    Preparing,
    RawBatch,
    answers_schema,
    as_timestamp,
    dashed_uuid,
    live_raw_batches,
    return_freed_memory,
)
from analytics.store import WaveStore
from surveys.models import Submission


@dataclass
class Batch:
    """Typed columns of a batch of interviews: codes, special codes in place of missing."""

    length: int
    columns: dict[str, pa.Array]
    ids: pa.Array | None = None  # the interviews' submission ids, in row order


def _missing_codes(
    variable: Variable, versions: pa.Array, lacking: dict[str, set[str]]
) -> pa.Array:
    """-9 where the interview's questionnaire version lacks the question, else -3."""
    missing_versions = lacking.get(variable.source)
    if not missing_versions:
        return pa.scalar(NOT_APPLICABLE)
    mask = pc.is_in(versions, value_set=pa.array(sorted(missing_versions)))
    return pc.if_else(mask, NOT_ASKED, NOT_APPLICABLE)


def _recoded(array: pa.Array, recode: dict[str, int]) -> pa.Array:
    """Text values as their numbers (a value without one becomes missing)."""
    keys = pa.array(list(recode), type=pa.string())
    numbers = pa.array(list(recode.values()), type=pa.int64())
    return pc.take(numbers, pc.index_in(pc.cast(array, pa.string()), value_set=keys))


def iter_microdata_batches(
    selection: MicrodataSelection,
    codebook: Codebook,
    *,
    batch_size: int = BATCH_ROWS,
    use_cache: bool = True,
    preparing: Preparing | None = None,
) -> Iterator[Batch]:
    """Interviews of the selection as typed column batches, in codebook order.

    Interviews come wave by wave (in wave id order), each wave in interview id order.
    `preparing` hears how many of a wave's new interviews have been parsed into its
    store, out of how many, before that wave's rows come.
    """
    return_freed_memory()
    schema = answers_schema(codebook)
    asked: dict[str, set[str]] = {}
    versions, enumerators = selection.sources
    for version in versions:
        asked[version.version] = set(version.questions)
    lacking = {
        variable.source: {v for v, names in asked.items() if variable.source not in names}
        for variable in codebook.question_variables
    }
    # Enumerators become 1..k in account order; interviews without one (web) get 0.
    enumerator_keys = pa.array(enumerators, type=pa.int64())
    remaining = selection.limit
    for wave_id in sorted(selection.wave_ids):
        if remaining is not None and remaining <= 0:
            return
        if use_cache:
            raws = WaveStore(wave_id).raw_batches(
                schema, batch_size=batch_size, limit=remaining, preparing=preparing
            )
        else:
            accepted = Submission.objects.feeding_estimates().filter(wave_id=wave_id)
            raws = live_raw_batches(accepted, schema, batch_size=batch_size, limit=remaining)
        for raw in raws:
            if remaining is not None:
                remaining -= raw.length
            yield _codebook_columns(raw, codebook, lacking, enumerator_keys)


def _codebook_columns(
    raw: RawBatch,
    codebook: Codebook,
    lacking: dict[str, set[str]],
    enumerator_keys: pa.Array,
) -> Batch:
    design: dict[str, pa.Array] = {}
    for source, name in zip(DESIGN_SOURCES, QUERY_FIELDS, strict=True):
        array = raw.fetched[name]
        if source in {"started_at", "ended_at"}:
            array = as_timestamp(array)
        elif source == "instance_id":
            array = dashed_uuid(array)
        elif source == "enumerator_id":
            index = pc.index_in(array, value_set=enumerator_keys)
            array = pc.fill_null(pc.add(pc.cast(index, pa.int64()), 1), 0)
        design[source] = array
    answers = raw.answers
    version_column = design["form_version__version"]
    columns: dict[str, pa.Array] = {}
    for variable in codebook.variables:
        if variable.kind in {"design", "paradata"}:
            array = design[variable.source]
            columns[variable.name] = _recoded(array, variable.recode) if variable.recode else array
            continue
        raw_answers = answers.column(variable.source).combine_chunks()
        missing = _missing_codes(variable, version_column, lacking)
        if variable.kind == "select_multiple_option":
            flat = pc.list_flatten(raw_answers)
            parents = pc.list_parent_indices(raw_answers).to_numpy()
            hit = np.zeros(len(raw_answers), dtype=np.int64)
            chosen = pc.equal(flat, variable.option).to_numpy(zero_copy_only=False)
            hit[parents[chosen]] = 1
            columns[variable.name] = pc.if_else(pc.is_null(raw_answers), missing, pa.array(hit))
        elif variable.recode:
            text = pc.coalesce(raw_answers, pc.cast(missing, pa.string()))
            columns[variable.name] = _recoded(text, variable.recode)
        elif variable.storage == "string":
            columns[variable.name] = pc.coalesce(raw_answers, pc.cast(missing, pa.string()))
        else:
            columns[variable.name] = pc.coalesce(raw_answers, pc.cast(missing, raw_answers.type))
    return Batch(length=raw.length, columns=columns, ids=raw.ids)
