"""The tutorials' transcripts (docs/GettingStarted.rst, docs/UseWithTornado.rst) against the
real demo programs, typed into a real terminal (tmux) one command at a time."""

from __future__ import annotations

import pytest

from tests.compat.tutorial_replay import ROOT, parse, replay
from tests.tmux import needs_tmux

pytestmark = [
    pytest.mark.terminal,
    needs_tmux,
]

DOCS = ("README.rst", "docs/GettingStarted.rst", "docs/UseWithTornado.rst")
SESSIONS = [
    pytest.param(session, id=f"{doc}-{n}-{session.script}")
    for doc in DOCS
    for n, session in enumerate(parse(ROOT / doc))
]


def test_the_tutorials_have_transcripts():
    scripts = {p.values[0].script for p in SESSIONS}
    assert scripts >= {"hello_trace.py", "torna_trace.py", "otrace demo"}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("session", SESSIONS)
def test_transcript_matches_the_program(session, tmp_path):
    replay(session, tmp_path)
