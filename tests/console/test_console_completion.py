"""TAB completion (otrace.shell.completion) against a real Session on a small namespace."""

from __future__ import annotations

import shlex

import pytest

import otrace.shell.commands  # noqa: F401 - declares the commands
from otrace.shell.completion import MAX_RESULTS, Completion, complete, python_start, split_words
from otrace.shell.registry import REGISTRY, Arg, Command, Option
from otrace.shell.session import Session
from tests.rt import PARAMS


class Cart:
    """A cart."""

    def __init__(self):
        self.items = []

    def add_item(self, name):
        self.items.append(name)

    def _secret(self):
        return 1


class Hostile:
    def __dir__(self):
        raise RuntimeError("no dir for you")

    def __getattr__(self, name):
        raise RuntimeError("no attributes either")


@pytest.fixture
def ns():
    return {
        "Cart": Cart,
        "cart": Cart(),
        "config": {"debug": True, "depth": 2},
        "hostile": Hostile(),
        "my dir": {"a": 1},
    }


@pytest.fixture
def session(ns, tmp_path):
    s = Session(ns, allow_unsafe=True, work_dir=str(tmp_path))
    yield s
    s.close()
    PARAMS.reset()


def texts(session, line: str) -> list[str]:
    return [c.text for c in complete(session, line)]


def applied(line: str, c: Completion) -> str:
    """The line after accepting completion ``c`` with the cursor at the end."""
    assert c.start <= 0
    return line[: len(line) + c.start] + c.text


def only(session, line: str) -> str:
    got = complete(session, line)
    assert len(got) == 1, got
    return applied(line, got[0])


# -- first word -------------------------------------------------------------------------
def test_first_word_completes_commands_and_aliases(session):
    assert only(session, "cdl") == "cdls "
    everything = texts(session, "")
    assert "ls " in everything and "set " in everything and "cde " in everything  # cde: alias
    assert not any(t.startswith("_") for t in everything[:40])


def test_first_word_in_osh_also_completes_names(session):
    got = texts(session, "ca")
    assert "cart" in got  # a first word that is not a command is a pr expression


# -- options ----------------------------------------------------------------------------
def test_options_come_from_the_declaration(session):
    got = complete(session, "ls -")
    letters = {c.display for c in got}
    assert {f"-{o.letter}" for o in REGISTRY["ls"].options} == letters
    assert all(c.meta for c in got)
    assert applied("ls -", next(c for c in got if c.display == "-l")) == "ls -l "
    combined = texts(session, "ls -l")
    assert "-la " in combined and "-ll " not in combined


def test_long_options_complete_too(session):
    """``--name`` forms declared with Option(long=...) are offered like the letters."""
    assert only(session, "resume --r") == "resume --raise "
    assert {c.display for c in complete(session, "resume --")} == {"--raise", "--value"}
    after_dash = {c.display for c in complete(session, "resume -")}
    assert after_dash == {"-r", "-v", "--raise", "--value"}
    assert only(session, "hold --t") == "hold --timeout "
    assert only(session, "unpickle --t") == "unpickle --trust "
    assert complete(session, "ls --") == []  # ls declares no long names
    # an option already given is not offered again
    assert {c.display for c in complete(session, "resume --raise E --")} == {"--value"}
    assert "-r" not in {c.display for c in complete(session, "resume -r E -")}
    # the value of a long option after a blank completes as the letter's value would
    assert "-c " not in texts(session, "hold --timeout ")


def test_option_value_choices(session):
    def demo(sh, args):
        """A demo command."""

    REGISTRY["_demo"] = Command(
        "_demo",
        demo,
        options=(Option("k", "kind", value="kind", choices=("fast", "slow")),),
        args=(Arg("path"),),
    )
    try:
        assert texts(session, "_demo -k ") == ["fast ", "slow "]
        assert only(session, "_demo -k s") == "_demo -k slow "
        assert texts(session, "_demo --kind=") == []  # no long name declared
    finally:
        del REGISTRY["_demo"]
    REGISTRY["_demo"] = Command(
        "_demo",
        demo,
        options=(Option("k", "kind", value="kind", choices=("fast", "slow"), long="kind"),),
        args=(Arg("path"),),
    )
    try:
        assert only(session, "_demo --k") == "_demo --kind="
        assert only(session, "_demo --kind=f") == "_demo --kind=fast "
        assert only(session, "_demo --kind s") == "_demo --kind slow "
    finally:
        del REGISTRY["_demo"]


# -- set and help -----------------------------------------------------------------------
def test_set_parameter_names(session):
    assert only(session, "set max_r") == "set max_recent "
    assert len(texts(session, "set ")) == len(PARAMS.names())


def test_set_bool_values(session):
    assert texts(session, "set safe_mode ") == ["True", "False"]
    assert only(session, "set safe_mode f") == "set safe_mode False"
    assert texts(session, "set max_recent ") == ["10"]  # the current value
    assert texts(session, "set nosuchparam ") == []
    assert texts(session, "set safe_mode True x") == []


def test_help_and_alias_complete_names(session):
    assert sorted(texts(session, "help cd")) == ["cd ", "cdls "]
    assert texts(session, "help ls x") == []
    assert "cde " in texts(session, "alias cd")


def test_repeat_completes_the_repeated_line(session):
    assert only(session, "repeat ls Cart.add") == "repeat ls Cart.add_item"
    assert only(session, "repeat cdl") == "repeat cdls "


# -- dotted names in /osh/globals -------------------------------------------------------
def test_dotted_attribute_paths(session):
    assert only(session, "ls Cart.a") == "ls Cart.add_item"
    assert sorted(texts(session, "cd config.de")) == ["config.debug", "config.depth"]


def test_hidden_names_are_offered_after_public_ones(session):
    assert not [t for t in texts(session, "ls Cart.") if "._" in t]  # safe mode: no private names
    session.execute("set safe_mode False")
    got = texts(session, "ls Cart.")
    assert "Cart._secret" in got and "Cart.__init__" in got
    first_hidden = next(i for i, t in enumerate(got) if t.startswith("Cart._"))
    assert first_hidden > 0 and "Cart.add_item" in got[:first_hidden]
    assert all(t.startswith("Cart._") for t in got[first_hidden:])
    assert only(session, "ls Cart._se") == "ls Cart._secret"


def test_default_pr_expression_completes_last_dotted_name(session):
    assert only(session, "Cart.a") == "Cart.add_item"
    assert only(session, "pr cart.ite") == "pr cart.items"
    assert only(session, "pr len(cart.ite") == "pr len(cart.items"
    assert only(session, "x + Cart.add") == "x + Cart.add_item"
    assert only(session, "!cart.add") == "!cart.add_item"
    assert "len" in texts(session, "pr le")  # builtins too
    assert texts(session, "pr cart.items[0].") == []  # attribute of an expression: not evaluated
    assert texts(session, "pr 3.") == []


def test_pending_multiline_code_completes_python(session):
    PARAMS.set("safe_mode", False)
    result = session.execute("!for i in range(2):")
    assert result.incomplete and session.pending_code
    assert only(session, "    cart.add") == "    cart.add_item"
    session.cancel_code()


# -- paths ------------------------------------------------------------------------------
def test_absolute_osh_paths(session):
    assert only(session, "ls /osh/gl") == "ls /osh/globals/"
    assert only(session, "ls /osh/globals/Ca") == "ls /osh/globals/Cart/"
    assert only(session, "cd /osh/globals/Cart/add") == "cd /osh/globals/Cart/add_item"


def test_special_prefixes_are_expanded(session, tmp_path):
    session.execute("set safe_mode False")  # tests what safe mode refuses
    (tmp_path / "notes.txt").write_text("x")
    assert only(session, "ls ~~g/Ca") == "ls /osh/globals/Cart/"
    assert only(session, "ls ~~w/no") == f"ls {tmp_path}/notes.txt"
    assert texts(session, "ls ~~x/") == []


def test_real_paths_escape_blanks(session, tmp_path):
    session.execute("set safe_mode False")  # tests what safe mode refuses
    (tmp_path / "my file.txt").write_text("x")
    (tmp_path / "sub dir").mkdir()
    (tmp_path / ".hidden").write_text("x")
    line = only(session, f"ls {tmp_path}/my")
    assert shlex.split(line) == ["ls", f"{tmp_path}/my file.txt"]
    assert only(session, f"ls {tmp_path}/su") == f"ls {tmp_path}/sub\\ dir/"
    assert all(".hidden" not in t for t in texts(session, f"ls {tmp_path}/"))
    assert only(session, f"ls {tmp_path}/.h") == f"ls {tmp_path}/.hidden"


def test_relative_real_paths_outside_osh(session, tmp_path):
    session.execute("set safe_mode False")  # tests what safe mode refuses
    (tmp_path / "sub dir").mkdir()
    session.execute(f"cd {tmp_path}")
    assert not session.in_osh
    assert only(session, "cat su") == "cat sub\\ dir/"  # a unix command's argument
    assert "cd " in texts(session, "c")  # commands that work outside /osh
    assert "run " not in texts(session, "r")  # run works only in /osh


def test_escaped_names_in_osh(session):
    assert only(session, "ls my") == "ls my\\ dir"


# -- robustness -------------------------------------------------------------------------
def test_quoting_errors_give_nothing(session):
    assert texts(session, "ls 'Ca") == []
    assert texts(session, 'pr "Cart.a') == []
    assert texts(session, "ls Cart\\") == []
    assert split_words("ls 'a b' c\\ d ") == [("ls", 0), ("a b", 3), ("c d", 9), ("", 14)]


def test_hostile_objects_never_raise(session):
    assert texts(session, "ls hostile.") == []
    assert texts(session, "pr hostile.x.") == []
    assert texts(session, "pr nosuch.x") == []
    assert texts(session, "ls /nonexistent/dir/") == []


def test_huge_mapping_is_bounded(session, ns):
    ns["big"] = {f"k{i}": i for i in range(1_000_000)}
    got = texts(session, "ls big.k")
    assert 0 < len(got) <= MAX_RESULTS
    session.execute("cd big")
    assert len(texts(session, "k")) <= MAX_RESULTS


def test_python_start_marks_the_python_part(session):
    assert python_start(session, "pr 1 + 2") == 3
    assert python_start(session, "!x = 1") == 1
    assert python_start(session, "Cart.add_item") == 0
    assert python_start(session, "ls -l") is None
    assert python_start(session, "") is None
