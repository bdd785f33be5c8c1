"""pr, exec, view, set, help, alias, source, repeat, lock, run, quit, safe mode."""

from __future__ import annotations

import pytest

from otrace.passwords import encrypt_password, verify_password
from otrace.shell.session import Session
from tests.rt import PARAMS


def test_pr_is_the_default_command(t):
    assert t.out("stats['count'] + 1") == "4"
    assert t.out("pr lst[2], stats['path']") == "thirty /x"
    assert t.out("lst") == "[10, 20, 'thirty']"
    assert t.out("pr /osh/globals/stats") == "{'count': 3, 'path': '/x'}"


def test_safe_mode_is_syntactic(t):
    assert t.out('stats["count"] >= 2') == "True"
    assert t.out("stats['count'] != 3") == "False"
    err = t.err("helper(10)")
    assert "not permitted in safe mode" in err and "set safe_mode False" in err
    assert "_" in t.err("c.__class__")
    assert "not permitted" in t.err("(x := 3)")
    assert "not permitted" in t.err("!x = 1")
    t.out("set safe_mode False")
    assert t.out("helper(10)") == "0.1"


def test_options_declared_unsafe_are_refused_by_their_declaration(t, tmp_path):
    """unpickle -t/--trust and resume -r/-v refuse in safe mode through Option(unsafe=...),
    naming both spellings; without them the same commands go on to their own checks."""
    db = tmp_path / "none.db"
    for line in (f"unpickle --trust {db}", f"unpickle -t {db}"):
        err = t.err(line)
        assert err.startswith(
            "unpickle -t/--trust: full pickle (it runs code named by the file)"
        ), err
        assert err.endswith("not permitted in safe mode; set safe_mode False"), err
    assert "not permitted" not in t(f"unpickle {db}")
    assert t.err("resume --value 3 nothing").startswith("resume -v/--value: evaluating code")
    assert t.err("rm -r /osh/pickled/x") == (
        "rm: deletion not permitted in safe mode; set safe_mode False"
    )


def test_safe_mode_permanent_without_allow_unsafe(shop):
    s = Session(vars(shop), allow_unsafe=False)
    r = s.execute("set safe_mode False")
    assert "not permitted" in r.err
    assert PARAMS.safe_mode is True
    s.close()


def test_pr_errors(t):
    t.out("set safe_mode False")
    err = t.err("helper(0)")
    assert "ZeroDivisionError" in err and 'File "<otrace>"' in err
    assert "session.py" not in err
    assert "SyntaxError" in t.err("1 +")
    assert "Use 'exec'" in t.err("x = 3")
    assert "did you mean ls" in t.err("lss")


def test_exec_sets_live_state(t, shop):
    t.out("set safe_mode False")
    t.out("cd Cart")
    t.out("!discount = 0.05")
    assert shop.Cart.discount == 0.05
    t.out("cd ~~g")
    t.out("exec newname = stats['count'] * 2")
    assert shop.newname == 6
    assert t.out("!1 + 1") == "2"
    assert "NameError" in t.err("!undefined_name")


def test_exec_in_list_directory_does_not_inject(t, shop):
    t.out("set safe_mode False")
    t.out("cd lst")
    t.out("!0")
    assert shop.lst == [10, 20, "thirty"]


def test_multiline_exec(t, sh, shop):
    t.out("set safe_mode False")
    r = sh.execute("!for i in range(3):")
    assert r.incomplete and sh.prompt() == "... "
    assert sh.execute("    total = (globals().get('total') or 0) + i").incomplete
    r = sh.execute("")
    assert not r.incomplete and not r.err
    assert shop.total == 3
    assert sh.prompt() == "globals> "


def test_view_source_and_doc(t):
    assert t.out("show plain") == "def plain(a, b=2):\n    return a + b"
    assert t.out("doc Cart") == "A shopping cart"
    assert t.out("view -i Cart.add_item").startswith("def add_item(self, name, qty=1):")
    t.out("cd Cart")
    assert t.out("view -i").startswith("class Cart(Base):")
    t.out("cd ~~g")
    assert "No source" in t.err("show stats")


def test_view_to_file(t, tmp_path):
    t.out("set safe_mode False")  # tests what safe mode refuses
    target = tmp_path / "plain.py"
    assert t.out(f"view plain > {target}") == ""
    assert target.read_text() == "def plain(a, b=2):\n    return a + b\n"


def test_set_parameters(t):
    t.out("set safe_mode False")  # tests what safe mode refuses
    out = t.out("set")
    names = [line.split(" = ")[0] for line in out.splitlines()]
    assert names == sorted(names) and "max_recent" in names and "trace_active" in names
    assert t.out("set max_recent") == "max_recent = 10"
    assert t.out("set max_recent 20") == "max_recent = 20"
    assert PARAMS.max_recent == 20
    assert t.out("set trace_active False") == "trace_active = False"
    assert PARAMS.trace_active is False
    assert "expected an integer" in t.err("set max_recent lots")
    assert "at least" in t.err("set max_recent 0")
    assert "Invalid parameter" in t.err("set nosuch 1")
    assert "expected true or false" in t.err("set deep_copy maybe")
    assert t.out("set repeat_interval 1") == "repeat_interval = 1.0"


def test_password_parameter(t):
    assert "No salt" in t.err("set password plain")
    hashed = encrypt_password("s3cret")
    assert t.out(f"set password {hashed}") == "password = (set)"
    assert verify_password("s3cret", PARAMS.password)
    assert not verify_password("wrong", PARAMS.password)
    assert "s3cret" not in hashed


def test_help(t):
    out = t.out("help")
    assert out.startswith("Commands:") and "cdls" in out and "trace" in out or "cdls" in out
    assert t.out("help cd").startswith("cd [path]")
    assert "max_recent" in t.out("help set")
    assert "# List the current directory" in t.out("help *")
    assert "did you mean" in t.err("help lss")
    assert "alias for" in t.out("help show")


def test_alias(t):
    assert "cde cd :" in t.out("alias").splitlines()
    t.out("alias hi4 pr '\"\\1-\\2\"'")
    assert t.out("hi4 aa bb cc") == "aa-bb"
    t.out("alias st pr stats")
    assert t.out("st") == "{'count': 3, 'path': '/x'}"
    assert t.out("alias st") == "st pr stats"
    t.out('alias st ""')
    assert "No such alias" in t.err("alias st")


def test_source_and_init_file_errors(t, tmp_path, sh):
    script = tmp_path / "cmds.trc"
    script.write_text("# comment\n\nset max_recent 7\nnoecho cd Cart\nnosuch_xyz\nls -f -..\n")
    out = t(f"source {script}")
    assert "globals> set max_recent 7" in out
    assert "cd Cart" not in out
    assert f"{script}:5:" in out
    assert "add_item" in out
    assert PARAMS.max_recent == 7
    assert "not found" in t.err("source /nonexistent/file.trc")


def test_repeat_lock_quit_are_front_end_actions(sh):
    r = sh.execute("repeat ls -l stats/*")
    assert (r.action, r.action_arg) == ("repeat", "ls -l stats/*")
    assert sh.execute("lock").action == "lock"
    r = sh.execute("quit")
    assert r.action == "quit" and "Detaching console" in r.err


def test_run_without_runner(t):
    t.out("set safe_mode False")  # tests what safe mode refuses
    assert "Cannot run" in t.err("run plain")


def test_bad_input_never_kills_the_shell(t):
    for line in ["ls -Z", "cd", "set", "'unbalanced", "trace -a", "view nosuch", "pr", "exec", "!"]:
        t(line)
    assert t.out("pr 1") == "1"


@pytest.mark.parametrize("line", ["cd /osh/globals/Cart", "pwd", "help"])
def test_cd_family_works_outside_osh(t, tmp_path, line):
    t.out("set safe_mode False")  # tests what safe mode refuses
    t.out(f"cd {tmp_path}")
    t.out(line)
