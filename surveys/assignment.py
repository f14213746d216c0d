"""Balanced random assignment on the web form: permuted blocks per wave and design row.

A ``list:assign balanced`` row asks for arms of equal size. On the web each respondent is
another browser, so a per-device block (what the tablet app does in ``form.js``) would be
a plain coin flip there. The server keeps one sequence per wave and balanced row instead:
permuted blocks of `BLOCK_SIZE` slots, half of them 0 (the first ``random()`` of the row
falls in [0, 0.5)) and half 1 (in [0.5, 1)), in random order, so a rule that splits at
0.5, ``once(int(random() * 2))``, gives the two arms equally often in every completed
block and never more than ``BLOCK_SIZE / 2`` apart.

A slot is taken when the interview's draw is first made, as the web page is rendered
(with or without JavaScript), under a row lock on the sequence (PostgreSQL's ``SELECT ...
FOR UPDATE``; SQLite's immediate transactions serialise writers), so concurrent first
loads never share a slot. The draw is kept by the interview's instance id: a reload or a
resend finds it again and uses no slot. A draw that is never submitted keeps its slot, so
balance holds over draws; abandoned interviews unbalance the stored ones only slightly.

Several balanced rows in one form each have their own sequence (independent blocks).
The preview never draws here (it writes nothing); the tablet app and ODK Collect keep
their draws on the device (ODK has no server round trip when it draws).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.db import transaction

from surveys import formtree
from surveys.expressions import keeps_its_value
from surveys.models import BalancedDraw, BalancedSequence, Wave

BLOCK_SIZE = 4


def balanced_rows(definition: dict[str, Any]) -> list[str]:
    """The names of the form's top-level balanced assignments, in form order."""
    return [
        node["name"]
        for node in formtree.level_questions(list(formtree.children(definition)))
        if node["type"] == "calculate"
        and keeps_its_value(node.get("calculation"))
        and (node.get("design") or {}).get("balanced")
    ]


def permuted_block(size: int = BLOCK_SIZE) -> list[int]:
    """One block: ``size / 2`` zeros and as many ones, in an order from the system's
    random source (not guessable from earlier blocks)."""
    if size < 2 or size % 2:
        raise ValueError("a balanced block holds an even number of slots, at least 2")
    block = [0, 1] * (size // 2)
    secrets.SystemRandom().shuffle(block)
    return block


def draw_balanced(
    *, wave: Wave, definition: dict[str, Any], instance_id: uuid.UUID | str
) -> dict[str, int]:
    """The interview's slot (0 or 1) in each balanced row's sequence, by row name: the one
    already drawn for this instance id, or the next slot of the sequence."""
    names = balanced_rows(definition)
    if not names:
        return {}
    instance = uuid.UUID(str(instance_id))
    with transaction.atomic():
        halves = recorded_halves(wave=wave, instance_id=instance)
        for name in names:
            if name not in halves:
                halves[name] = _next_slot(wave, name, instance)
    return {name: halves[name] for name in names}


def _next_slot(wave: Wave, name: str, instance: uuid.UUID) -> int:
    locked = BalancedSequence.objects.select_for_update().filter(wave=wave, name=name)
    sequence = locked.first()
    if sequence is None:  # the row's first draw in the wave
        BalancedSequence.objects.get_or_create(wave=wave, name=name)
        sequence = locked.get()
    # Another request for the same interview may have drawn while this one waited.
    found = sequence.draws.filter(instance_id=instance).values_list("half", flat=True).first()
    if found is not None:
        return found
    pending = list(sequence.pending) or permuted_block()
    half = pending.pop(0)
    BalancedDraw.objects.create(
        sequence=sequence, instance_id=instance, slot=sequence.drawn, half=half
    )
    sequence.drawn += 1
    sequence.pending = pending
    sequence.save(update_fields=["drawn", "pending"])
    return half


def recorded_halves(*, wave: Wave, instance_id: uuid.UUID | str) -> dict[str, int]:
    """The balanced slots already drawn for an interview of the wave, by row name."""
    return dict(
        BalancedDraw.objects.filter(
            sequence__wave=wave, instance_id=uuid.UUID(str(instance_id))
        ).values_list("sequence__name", "half")
    )
