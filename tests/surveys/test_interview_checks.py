"""The checks before an interview is stored: the size and NUL checks read orjson's text of
the answers, and fall back to the standard library's measure and a walk of the values
where that text cannot answer."""

from __future__ import annotations

import json
import uuid

import pytest

from surveys.interview_checks import MAX_ANSWERS_BYTES, checked_interview
from surveys.services import SubmissionRefused
from surveys.validation import AnswerErrors
from tests.surveys.webform_fixtures import complete_answers, instrument_wave

pytestmark = pytest.mark.django_db


def check(wave, answers, **kwargs):
    return checked_interview(
        wave=wave, answers=answers, channel="tablet", language="en",
        instance_id=uuid.uuid4(), **kwargs,
    )  # fmt: skip


def refusal(wave, answers, **kwargs) -> str:
    with pytest.raises(SubmissionRefused) as caught:
        check(wave, answers, **kwargs)
    return caught.value.code


def test_the_size_limit_is_the_standard_librarys_utf8_json():
    wave = instrument_wave()
    # Just under the limit as json.dumps writes it, with its ", " and ": " separators.
    answers = complete_answers(R1="3", R1_OTHER="я")
    filler = MAX_ANSWERS_BYTES - len(json.dumps(answers, ensure_ascii=False).encode())
    under = {**answers, "R1_OTHER": "я" + "x" * filler}
    assert len(json.dumps(under, ensure_ascii=False).encode()) == MAX_ANSWERS_BYTES
    # Too long for the text question, but not too large: the validation answers.
    with pytest.raises(AnswerErrors) as caught:
        check(wave, under)
    assert list(caught.value.errors) == ["R1_OTHER"]
    over = {**under, "R1_OTHER": under["R1_OTHER"] + "x"}
    assert refusal(wave, over) == "too_large"


def test_answers_orjson_cannot_write_are_measured_and_walked_the_old_way():
    wave = instrument_wave()
    # A key that is not text and an integer beyond 64 bits: orjson refuses both.
    with pytest.raises(AnswerErrors) as caught:
        check(wave, {**complete_answers(), 7: "x", "HH_SIZE": 2**70})
    assert set(caught.value.errors) == {"7", "HH_SIZE"}
    assert refusal(wave, {**complete_answers(), 7: "a\x00b"}) == "nul_character"


@pytest.mark.parametrize(
    "answers",
    [
        complete_answers(R1="3", R1_OTHER="a\x00b"),
        {**complete_answers(), "x\x00": "1"},
        complete_answers(M=["M1", "\x00"]),
    ],
)
def test_a_nul_character_anywhere_is_refused(answers):
    assert refusal(instrument_wave(), answers) == "nul_character"


def test_text_that_only_looks_like_a_nul_escape_is_not_refused():
    stored = check(instrument_wave(), complete_answers(R1="3", R1_OTHER="\\u0000"))
    assert stored["answers"]["R1_OTHER"] == "\\u0000"


def test_a_nul_in_the_device_id_is_refused():
    assert refusal(instrument_wave(), complete_answers(), device_id="tab\x00let") == (
        "nul_character"
    )
