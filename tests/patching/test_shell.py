"""edit/unpatch as the operator uses them: errors, safe mode, here-docs, the editor, files."""

from __future__ import annotations

import functools
import os
import stat
import sys
import textwrap

from otrace.shell.session import Session
from tests.rt import PATCHES
from tests.shell.conftest import Transcript

NEW_PLAIN = "def plain(a, b=2):\n    return a - b\n"


def test_unpatch_to_file_and_reapply(prog, t, patchfile, tmp_path):
    t.out("edit plain < " + patchfile(NEW_PLAIN))
    saved = tmp_path / "saved.patch"
    assert t.out(f"unpatch plain > {saved}") == "Unpatching plain"
    assert saved.read_text() == NEW_PLAIN
    assert prog.plain(5) == 7
    assert t.out(f"edit plain < {saved}") == "Patched plain"
    assert prog.plain(5) == 3


def test_unpatch_all_in_patches_directory(prog, t, patchfile, sh):
    t.out("edit plain < " + patchfile(NEW_PLAIN))
    t.out("edit Cart.double < " + patchfile("def double(x):\n    return 0\n"))
    assert "unpatch *" in t.err("unpatch *")  # only in /osh/patches
    t.out("cd /osh/patches")
    assert sorted(t.out("unpatch *").splitlines()) == ["Unpatching Cart.double", "Unpatching plain"]
    assert sh.patches == {}
    assert prog.plain(1) == 3 and prog.Cart.double(2) == 4


def test_unpatch_by_name_in_patches_directory(prog, t, patchfile):
    t.out("edit Cart.double < " + patchfile("def double(x):\n    return 0\n"))
    t.out("cd /osh/patches")
    assert t.out("unpatch Cart.double") == "Unpatching Cart.double"
    assert prog.Cart.double(2) == 4


def test_error_cases_leave_the_old_code(prog, t, patchfile):
    bad = {
        "def plain(a, b=2):\n    return (a +\n": "does not compile",
        "def other(a):\n    return 1\n": "must define 'def plain', but found ['other']",
        "raise RuntimeError('at import')\ndef plain(a, b=2):\n    return 0\n": "failed: RuntimeError: at import",
        "plain = 3\n": "must define 'def plain'",
        "def plain(a, b=2):\n    yield a\n": "changes the kind of function",
    }
    for text, message in bad.items():
        err = t.err("edit plain < " + patchfile(text))
        assert message in err and "\n" not in err, err
        assert prog.plain(1) == 3
    assert "Invalid patch class/method: nosuch" in t.err("edit nosuch < " + patchfile(NEW_PLAIN))
    assert "Class patching not yet implemented" in t.err("edit Cart < " + patchfile(NEW_PLAIN))
    assert "reading from" in t.err("edit plain < /nonexistent/file.py")
    assert "Unpatching failed for plain" in t.err("unpatch plain")
    t.out("cd /osh")
    assert "Patching only works in subdirectory of globals/patches" in t.err("edit recent")
    assert PATCHES == {}


def test_second_edit_needs_force(prog, t, patchfile):
    t.out("edit plain < " + patchfile(NEW_PLAIN))
    err = t.err("edit plain < " + patchfile("def plain(a, b=2):\n    return 0\n"))
    assert "-f" in err
    assert prog.plain(5) == 3


def test_safe_mode_refuses(prog, t, patchfile, sh):
    t.out("edit plain < " + patchfile(NEW_PLAIN))
    t.out("set safe_mode True")
    message = "Patching/unpatching not permitted in safe mode; set safe_mode False"
    assert t.err("edit -f plain < " + patchfile(NEW_PLAIN)) == message
    assert t.err("unpatch plain") == message
    assert prog.plain(5) == 3


def test_refused_without_allow_unsafe(prog, patchfile):
    s = Session(vars(prog), allow_unsafe=False)
    try:
        r = s.execute("edit plain < " + patchfile(NEW_PLAIN))
        assert "not permitted in safe mode" in r.err
        assert prog.plain(1) == 3
    finally:
        s.close()


def test_here_doc_lines(prog, sh):
    t = Transcript(sh)
    r = sh.execute("edit Cart.add_item <<END")
    assert r.incomplete and not r.err
    assert sh.prompt() == "... "
    for line in ["def add_item(self, name, qty=1):", "    return 'from here-doc'"]:
        assert sh.execute(line).incomplete
    assert prog.Cart().add_item("x") == 1  # nothing yet
    assert t.out("END") == "Patched Cart.add_item"
    assert prog.Cart().add_item("x") == "from here-doc"
    assert sh.prompt() == "globals> "


def test_here_doc_in_a_command_file(prog, sh, tmp_path):
    trc = tmp_path / "fix.trc"
    trc.write_text(
        textwrap.dedent("""\
        edit plain <<EOF
        def plain(a, b=2):
            return a * 1000
        EOF
        pr plain(2)
    """)
    )
    out = Transcript(sh).out(f"source {trc}")
    assert "Patched plain" in out and "2000" in out


def test_here_doc_given_by_the_front_end(prog, sh):
    sh.hooks["here_doc"] = NEW_PLAIN
    try:
        assert Transcript(sh).out("edit plain <") == "Patched plain"
    finally:
        sh.hooks.pop("here_doc")
    assert prog.plain(5) == 3
    assert "Expecting here_doc input" in Transcript(sh).err("edit -f plain <")


def _script_editor(tmp_path, body: str) -> str:
    script = tmp_path / "fake_editor.py"
    script.write_text(f"#!{sys.executable}\nimport sys\npath = sys.argv[1]\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_editor_path(prog, t, tmp_path, monkeypatch):
    seen = tmp_path / "seen.txt"
    editor = _script_editor(
        tmp_path,
        textwrap.dedent(f"""\
        text = open(path).read()
        open({str(seen)!r}, "w").write(text)
        open(path, "w").write(text.replace("return len(self.items)", "return 'edited'"))
    """),
    )
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", editor)
    assert t.out("edit Cart.add_item") == "Patched Cart.add_item"
    assert seen.read_text().startswith("def add_item(self, name, qty=1):")
    assert prog.Cart().add_item("x") == "edited"
    # editing again shows the patch's source; -f needed
    assert "-f" in t.err("edit Cart.add_item")
    assert t.out("edit -f Cart.add_item") == "No changes"  # nothing left to replace
    assert "return 'edited'" in seen.read_text()


def test_editor_unchanged_and_parameter_wins(prog, t, tmp_path, monkeypatch):
    monkeypatch.setenv("VISUAL", "/nonexistent/editor")
    t.out("set editor true")
    # the decorator is stripped from what the editor shows
    assert t.out("edit Cart.make") == "No changes"
    assert PATCHES == {}
    t.out("set editor false")
    assert "failed" in t.err("edit Cart.make")


def _stand_in_trace(func):
    """What the tracing engine's wrapper looks like: functools.wraps + _otrace_orig_function."""
    calls = []

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        result = func(*args, **kwargs)
        calls.append((args[1:], result))
        return result

    wrapper._otrace_orig_function = func
    wrapper.calls = calls
    return wrapper


def test_patch_through_a_trace_wrapper(prog, t, patchfile):
    # stand-in for otrace.tracing's wrapper (the engine is written in parallel)
    original = prog.Cart.__dict__["add_item"]
    wrapper = _stand_in_trace(original)
    prog.Cart.add_item = wrapper
    t.out(
        "edit Cart.add_item < "
        + patchfile("def add_item(self, name, qty=1):\n    return 'patched'\n")
    )
    assert prog.Cart.__dict__["add_item"] is wrapper  # still traced
    assert prog.Cart().add_item("a") == "patched"
    assert wrapper.calls == [(("a",), "patched")]
    assert "return 'patched'" in t.out("view -i Cart.add_item")
    # untrace: the patch stays
    prog.Cart.add_item = original
    assert prog.Cart().add_item("b") == "patched"
    # trace again, then unpatch: still traced, old code
    prog.Cart.add_item = wrapper
    t.out("unpatch Cart.add_item")
    assert prog.Cart().add_item("c") == 1
    assert wrapper.calls[-1] == (("c",), 1)
    assert "return 'patched'" not in t.out("view -i Cart.add_item")
    assert not hasattr(wrapper, "_otrace_patch_source")


def test_files_are_absolute_or_work_dir_relative(prog, tmp_path):
    (tmp_path / "rel.py").write_text(NEW_PLAIN)
    s = Session(vars(prog), allow_unsafe=True, work_dir=str(tmp_path))
    try:
        s.execute("set safe_mode False")
        assert Transcript(s).out("edit plain < rel.py") == "Patched plain"
        Transcript(s).out("unpatch plain > out.py")
        assert os.path.exists(tmp_path / "out.py")
    finally:
        s.close()
