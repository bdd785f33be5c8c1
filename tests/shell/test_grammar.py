"""The declared grammar: usage, help and docs come from the declarations; one tokenizer and
one reading of a line serve execution and completion; hostile input lines are refused in one
line."""

from __future__ import annotations

import random
import shlex

import pytest

from otrace.errors import UsageError
from otrace.shell import dispatch, tokens
from otrace.shell.completion import complete, escape
from otrace.shell.parsing import expect, parse
from otrace.shell.reference import reference_rst
from otrace.shell.registry import REGISTRY, Arg, Command, Option, builtin_aliases
from otrace.shell.tokens import MAX_LINE, LineError, tokenize


def texts(sh, line: str) -> list[str]:
    return [c.text for c in complete(sh, line)]


def only(sh, line: str) -> str:
    got = complete(sh, line)
    assert len(got) == 1, got
    return line[: len(line) + got[0].start] + got[0].text


# -- usage, help and docs from the declarations ----------------------------------------
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_declared_option_argument_and_redirection_is_in_the_usage(name):
    cmd = REGISTRY[name]
    usage = cmd.usage
    assert usage.startswith(name)
    flags = "".join(o.letter for o in cmd.options if not o.value)
    if flags:
        assert f"[-{flags}]" in usage
    for opt in cmd.options:
        if opt.value:
            assert f"-{opt.letter} {opt.value}" in usage
    for arg in cmd.args:
        assert arg.name in usage
    for op, shown in (("<", "< file"), ("<<", "<<EOF"), (">", "> file")):
        assert (shown in usage) == (op in cmd.redirects)
    help_text = cmd.help_text()
    assert help_text.splitlines()[0] == usage
    for opt in cmd.options:
        assert f"  -{opt.letter}" in help_text
    for alias in cmd.aliases:
        assert f"  {alias} " in help_text


def test_ls_usage_shows_every_option(t):
    usage = REGISTRY["ls"].usage
    assert usage == "ls [-acfmvltC] [-.|-..|-.Base] [path|glob ...]"
    assert t.out("help ls").splitlines()[0] == usage
    assert f"{usage:<50} # List" in t.out("help *")


def test_usage_shapes():
    def f(sh, args):
        """Demo."""

    cmd = Command(
        "demo",
        f,
        options=(Option("v", "verbose"), Option("n", "count", value="N")),
        args=(Arg("target"), Arg("first", optional=True), Arg("more", optional=True, repeat=True)),
        redirects=("<", "<<", ">"),
        chains=True,
    )
    assert (
        cmd.usage
        == "demo [-v] [-n N] target [first [more ...]] [< file | <<EOF] [> file] [; command]"
    )
    with pytest.raises(ValueError, match="last argument"):
        Command("bad", f, args=(Arg("a", repeat=True), Arg("b")))
    with pytest.raises(ValueError, match="required argument after an optional"):
        Command("bad", f, args=(Arg("a", optional=True), Arg("b")))
    with pytest.raises(ValueError, match="unknown kind"):
        Arg("x", "nonsense")


def test_docs_reference_lists_declared_aliases():
    rst = reference_rst()
    for alias, words in builtin_aliases().items():
        assert f"``{alias}``" in rst
        assert words[0] in REGISTRY


def test_declared_aliases_reach_every_session(t, sh):
    assert sh.aliases["show"] == ["view", "-i"]
    assert sh.aliases["up"] == ["cd", "__up"]
    assert t.out("help show") == "show is an alias for: view -i"
    assert "Aliases:" in t.out("help cd") and "cd __up ; view -i" in t.out("help cd")


# -- one tokenizer ------------------------------------------------------------------------
def test_tokenizer_agrees_with_shlex():
    rnd = random.Random(12)
    alphabet = "ab <>;'\"\\\t\x1b"
    for _ in range(5000):
        line = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
        try:
            expected = shlex.split(line)
        except ValueError:
            expected = None
        for operators in (False, True):
            try:
                words = tokenize(line, operators=operators)
                got = [w.text for w in (tokens.glue(words) if operators else words)]
            except LineError:
                got = None
            assert got == expected, (line, operators)


def test_tokenizer_marks_operators_and_positions():
    words = tokenize("edit f<<'END' >x 'a<b'", operators=True)
    assert [(w.text, w.op) for w in words] == [
        ("edit", False),
        ("f", False),
        ("<<", True),
        ("END", False),
        (">", True),
        ("x", False),
        ("a<b", False),
    ]
    assert [(w.start, w.end) for w in words][:3] == [(0, 4), (5, 6), (6, 8)]
    assert [w.text for w in tokenize("ls a ", partial=True)] == ["ls", "a", ""]


def test_a_megabyte_line_is_refused_in_one_line(sh):
    line = "pr " + "a" * 1_000_000
    with pytest.raises(LineError, match="too long"):
        tokenize(line)
    r = sh.execute(line)
    assert r.err.count("\n") == 1 and "Input line too long" in r.err and "internal" not in r.err
    assert complete(sh, line) == []
    assert sh.execute("pr 1").out == "1\n"  # and the shell goes on


def test_a_line_at_the_limit_runs(t):
    name = "x" * (MAX_LINE - len("pr '' ") - 2)
    assert t.out(f"pr '{name}'") == name


@pytest.mark.parametrize(
    "line",
    ["\ud800", "pr '\ud800'", "x\udcff", "ls \ud800", "source \udcff", "cd \ud800", "pr '\x00'"],
)
def test_lone_surrogates_and_nul_are_refused(sh, line):
    r = sh.execute(line)
    assert "internal error" not in r.err and r.err.count("\n") == 1, r.err
    assert "lone surrogate" in r.err or "NUL" in r.err
    assert complete(sh, line) == []


def test_refused_characters_outside_osh_and_in_pending_code(sh, tmp_path, prog_free_session):
    sh.params.set("safe_mode", False)
    assert sh.execute("!for i in range(1):").incomplete
    r = sh.execute("    x = '\ud800'")
    assert "lone surrogate" in r.err and "internal error" not in r.err
    sh.cancel_code()
    s = prog_free_session
    s.execute(f"cd {tmp_path}")
    for line in ("echo \x00", "echo \ud800", "cat 'x"):
        r = s.execute(line)
        assert r.err and "internal error" not in r.err, r.err
    assert "No closing quotation" in s.execute("cat 'x").err


def test_control_characters_are_ordinary_characters(t):
    assert "Failed to change" in t.err("cd \x1b[2J")
    assert t.out("pr '\x07'") == "\\x07"  # printed escaped: it cannot ring or drive the terminal


# -- parsing by the declaration -------------------------------------------------------------
def test_parse_errors_name_the_usage():
    ls, view, edit = REGISTRY["ls"], REGISTRY["view"], REGISTRY["edit"]
    with pytest.raises(UsageError, match=r"invalid option -z; usage: ls \[-acfmvltC\]"):
        parse(ls, ["-z"])
    with pytest.raises(UsageError, match="too many arguments"):
        parse(REGISTRY["cd"], ["a", "b"])
    with pytest.raises(UsageError, match="missing FILE"):
        parse(REGISTRY["source"], [])
    with pytest.raises(UsageError, match="cannot redirect with >"):
        parse(edit, tokenize("x > f", operators=True))
    with pytest.raises(UsageError, match="more than one output"):
        parse(view, tokenize("x >a >b", operators=True))
    args = parse(view, tokenize("-d x>out", operators=True))
    assert args.words == ["x"] and args.stdout.target == "out" and args.flag("d")
    args = parse(edit, tokenize("-f x <<'END'", operators=True))
    assert args.stdin.op == "<<" and args.stdin.target == "END"
    assert parse(edit, tokenize("x <<", operators=True)).stdin.target == "EOF"
    assert parse(edit, tokenize("x <", operators=True)).stdin.target == ""  # front end's here-doc
    args = parse(REGISTRY["trace"], tokenize("-c qty>2 f", operators=True))
    assert args.opts["c"] == "qty>2" and args.words == ["f"]  # no redirection for trace
    assert parse(view, tokenize("'>'", operators=True)).words == [">"]  # quoted: a word


def test_expect_says_what_the_cursor_is_on():
    trace = REGISTRY["trace"]
    assert expect(trace, tokenize("-a ", operators=True, partial=True)).what == "value"
    assert expect(trace, tokenize("-", operators=True, partial=True)).what == "option"
    exp = expect(trace, tokenize("-a tag Ca", operators=True, partial=True))
    assert exp.what == "arg" and exp.arg.kind == "target"
    assert expect(trace, tokenize("x y", operators=True, partial=True)).what == "nothing"
    exp = expect(REGISTRY["view"], tokenize("x > ", operators=True, partial=True))
    assert exp.what == "redirect" and exp.op == ">"


def test_dispatch_reads_a_line_the_same_for_both(sh):
    line = dispatch.read(sh, "show Cart.add_item")
    assert line.command is REGISTRY["view"] and [w.text for w in line.words] == [
        "-i",
        "Cart.add_item",
    ]
    line = dispatch.read(sh, "cd Cart ; ls -l")
    assert line.command is REGISTRY["cd"] and line.chain == " ls -l"
    assert dispatch.read(sh, "1 + 2").kind == "python"
    assert dispatch.read(sh, "!x = 1").command is REGISTRY["exec"]
    partial = dispatch.read(sh, "show Cart.a", partial=True)
    assert partial.cursor.text == "Cart.a" and partial.command is REGISTRY["view"]


# -- redirections and here-docs through the shell -------------------------------------------
def test_redirections_without_blanks_and_quoted_names(t, tmp_path):
    t.out("set safe_mode False")  # tests what safe mode refuses (writing files)
    t.out(f"view plain>{tmp_path}/a.py")
    assert (tmp_path / "a.py").read_text().startswith("def plain(")
    t.out(f"view plain > '{tmp_path}/b c.py'")
    assert (tmp_path / "b c.py").exists()
    assert "cannot redirect with <" in t.err("view plain < x")


def test_here_doc_with_a_quoted_end_word(t, sh, shop):
    sh.params.set("safe_mode", False)
    assert sh.execute("edit plain <<'END'").incomplete
    sh.execute("def plain(a, b=2):")
    sh.execute("    return 'here'")
    assert t.out("END") == "Patched plain"
    assert shop.plain(1) == "here"
    t.out("unpatch plain")


def test_here_doc_lines_are_checked_too(sh):
    sh.params.set("safe_mode", False)
    assert sh.execute("edit plain <<END").incomplete
    assert "lone surrogate" in sh.execute("    return '\ud800'").err
    sh.execute("END")  # ends the here-doc (the patch itself fails: no def)
    assert not sh.hooks.get("collect_line")


def test_chain_after_an_alias_and_a_failed_cd(t):
    assert t.out("cd Cart ; pwd") == "/osh/globals/Cart"
    assert "Failed to change" in t.err("cd nosuch; pwd")
    t.out("cd ~~g")


# -- completion by declared kinds -------------------------------------------------------------
def test_completes_declared_choices(sh):
    assert texts(sh, "untrace al") == ["all "]
    assert sorted(texts(sh, "tag c ")) == ["id ", "time "]
    assert texts(sh, "unpickle x.db meth") == ["methodname="]
    assert texts(sh, "trace -a pd") == ["pdb "]


def test_completes_files_from_the_work_directory(tmp_path, prog_free_session):
    s = prog_free_session
    s.execute("set safe_mode False")  # safe mode does not browse the real filesystem
    (tmp_path / "notes.trc").write_text("pwd\n")
    assert only(s, "source no") == "source notes.trc"
    assert only(s, "unpickle no") == "unpickle notes.trc"
    assert only(s, "view Cart > no") == "view Cart > notes.trc"
    assert texts(s, "edit f <<E") == []


def test_completes_trace_ids(t, sh, shop):
    t.out("trace Cart.boom")
    with pytest.raises(ZeroDivisionError):
        shop.c.boom(0)
    trace_id = sh.store.newest.id
    assert only(sh, "resume Cart.bo") == f"resume {escape(trace_id)} "
    assert only(sh, f"save {trace_id} Cart.bo") == f"save {trace_id} {escape(trace_id)} "
    t.out("untrace Cart.boom")


def test_completes_lines_of_their_own(sh):
    assert only(sh, "alias ll ls Cart.a") == "alias ll ls Cart.add_item"
    assert only(sh, "cd Cart; ls pla") == "cd Cart; ls plain"  # completed where we are now
    assert only(sh, "uv Cart.a") == "uv Cart.add_item"
    assert texts(sh, "help he") == ["help "]
    assert texts(sh, "set safe_mode True x") == []


@pytest.fixture
def prog_free_session(tmp_path):
    from otrace.shell.session import Session

    s = Session({"Cart": object}, allow_unsafe=True, work_dir=str(tmp_path))
    yield s
    s.close()


def test_declaring_a_command_checks_its_aliases():
    from otrace.shell.registry import command

    with pytest.raises(ValueError, match="must start with _probe"):
        command("_probe", aliases={"pp": "ls -l"})
    with pytest.raises(RuntimeError, match="alias 'show' declared twice"):
        command("_probe", aliases={"show": "_probe x"})(lambda sh, args: None)
    assert "_probe" not in REGISTRY
    try:

        @command("_probe", args=(Arg("x", "text"),), aliases={"pp": "_probe 'a b'"})
        def probe(sh, args):
            """Probe."""
            sh.out.write(repr(args.words))

        assert builtin_aliases()["pp"] == ["_probe", "a b"]
        assert REGISTRY["_probe"].usage == "_probe x"
        with pytest.raises(RuntimeError, match="declared twice"):
            command("_probe")(probe)
    finally:
        REGISTRY.pop("_probe", None)
