"""Answers of several workers merged: identical ones once, labelled by pid."""

from __future__ import annotations

from otrace.fleet.output import merge
from otrace.shell.output import Result


def result(*chunks: tuple[str, str]) -> Result:
    r = Result()
    r.chunks = [(stream, text, "text") for stream, text in chunks]
    return r


def test_identical_answers_are_shown_once_for_all():
    answers = {p: result(("out", "Tracing Work.step")) for p in (3, 1, 2)}
    assert merge(answers).chunks == [("out", "[all 3 workers] Tracing Work.step", "text")]


def test_different_answers_are_grouped_by_worker():
    answers = {
        10: result(("out", "a\nb")),
        11: result(("err", "Disconnected from the service")),
        12: result(("out", "a\nb")),
    }
    assert merge(answers).chunks == [
        ("out", "[workers 10, 12]", "text"),
        ("out", "a\nb", "text"),
        ("err", "[worker 11] Disconnected from the service", "text"),
    ]


def test_no_output_anywhere_is_no_output():
    assert merge({1: result(), 2: result()}).chunks == []
    mixed = merge({1: result(), 2: result(("out", "x"))}).chunks
    assert mixed == [("out", "[worker 1] (no output)", "text"), ("out", "[worker 2] x", "text")]
