"""cd, cdls, pwd, pushd, popd, swapd, ls and the prompt, as transcripts."""

from __future__ import annotations

import os

from otrace.contexts import TraceContext
from tests.rt import STORE


def test_start_in_globals_and_ls(t, sh):
    assert sh.prompt() == "globals> "
    out = t.out("ls")
    for name in ("Base", "Cart", "helper", "lst", "plain", "stats", "c"):
        assert name in out.split()
    assert "__name__" not in out


def test_ls_kinds(t):
    assert t.out("ls -c").split() == ["Base", "Cart"]
    assert t.out("ls -f").split() == ["helper", "plain"]
    assert "Base" not in t.out("ls -v").split()
    assert "stats" in t.out("ls -v").split()


def test_cd_dotted_and_prompt(t, sh):
    t.out("cd Cart")
    assert sh.prompt() == "osh..Cart> "
    assert t.out("pwd") == "/osh/globals/Cart"
    t.out("cd ~~g")
    t.out("cd Cart.add_item")
    assert t.out("pwd") == "/osh/globals/Cart/add_item"
    t.out("cd ..")
    assert sh.prompt() == "osh..Cart> "


def test_ls_exclusions(t):
    t.out("cd Cart")
    assert t.out("ls -f -..").split() == ["add_item", "boom"]
    assert t.out("ls -.") == ""
    t.out("cd ~~g")
    t.out("cd c")
    assert t.out("ls -.").split() == ["items", "owner"]
    assert t.out("ls -.Base").split() == ["add_item", "boom", "items", "owner", "tax"]


def test_ls_operands_and_globs(t):
    assert t.out("ls Cart") == "Cart"
    assert t.out("ls stats/*").split() == ["stats/count", "stats/path"]
    assert t.out("ls -l lst stats") == "lst   = [10, 20, 'thirty']\nstats = {count, path}"
    assert t.out("ls /osh/glob*") == "/osh/globals"
    assert "no matches" in t.err("ls nosuch*")


def test_ls_all_and_long(t):
    t.out("set safe_mode False")  # tests what safe mode refuses
    assert "__module__" in t.out("cdls Cart -a")
    out = t.out("ls -l")
    assert "tax" in out and "= 0.1" in out


def test_list_directory(t):
    t.out("cd lst")
    assert t.out("ls").split() == ["0", "1", "2"]
    assert t.out("pr _otrace_value") == "[10, 20, 'thirty']"
    assert t.out("cd 2") == ""  # a str is an object directory


def test_cd_errors_are_atomic(t, sh):
    t.out("cd Cart")
    assert "Failed to change" in t.err("cd add_item/nosuch/deeper")
    assert sh.cwd == ("osh", "globals", "Cart")
    assert "Ambiguous" in t.err("cd /osh/*l*")
    assert sh.cwd == ("osh", "globals", "Cart")


def test_cd_glob_in_a_huge_dict_stops_at_the_second_match(sh, monkeypatch):
    from otrace.vfs import tree

    made: list[object] = []
    real = tree.Resolved
    monkeypatch.setattr(tree, "Resolved", lambda *a: made.append(a) or real(*a))
    sh.globals["huge"] = {f"k{i}": i for i in range(100_000)}
    r = sh.execute("cd huge/*")
    assert r.err.strip() == "Ambiguous directory change 'huge/*' (several matches)"
    assert sh.cwd == ("osh", "globals")
    # deciding "ambiguous" needs two paths, not all 100,000 (seconds, and full garbage
    # collections that stall every program thread)
    assert len(made) == 2
    r = sh.execute("cd huge/k9999[9]")  # one match: cd goes there
    assert (r.err, sh.cwd) == ("", ("osh", "globals", "huge", "k99999"))


def test_cd_default_and_osh_root(t, sh):
    t.out("cd /osh")
    assert sh.prompt() == "osh> "
    assert sorted(t.out("ls").split()) == [
        "all",
        "db",
        "globals",
        "locals",
        "patches",
        "pickled",
        "recent",
        "requests",
        "saved",
        "tasks",
        "web",
    ]
    t.out("cd")
    assert sh.cwd == ("osh", "globals")


def test_dir_stack(t, sh):
    t.out("pushd /osh/recent")
    assert sh.prompt() == "recent> "
    t.out("pushd /osh/patches")
    assert t.out("pwd -a") == "/osh/patches\n/osh/recent\n/osh/globals"
    t.out("swapd")
    assert sh.prompt() == "recent> "
    t.out("popd")
    assert sh.prompt() == "patches> "
    t.out("popd")
    assert sh.prompt() == "globals> "
    assert t.err("popd") == "Nothing to pop"
    assert t.err("swapd") == "Nothing to swap"


def test_popd_all(t, sh):
    t.out("pushd /osh/recent")
    t.out("pushd /osh/saved")
    t.out("popd -a")
    assert sh.cwd == ("osh", "globals") and sh.dirstack == []


def test_cd_chain_runs_only_after_success(t):
    assert t.out("cd Cart ; ls -f").split() == ["add_item", "boom", "inherited"]
    out = t("cd nosuch ; pr 'ran'")
    assert "ran" not in out


def test_real_filesystem_and_unix_commands(t, sh, tmp_path):
    t.out("set safe_mode False")  # tests what safe mode refuses
    (tmp_path / "notes.txt").write_text("x")
    t.out(f"cd {tmp_path}")
    assert sh.prompt() == f"{tmp_path.name}> "
    assert t.out("ls") == "notes.txt"
    assert t.out("echo hello $((1+2))") == "hello 3"
    assert "not found" in t("nosuchcommand_xyz")
    t.out("cd ~~g")
    assert sh.cwd == ("osh", "globals")


def test_unix_command_timeout(t, sh, tmp_path):
    t.out("set safe_mode False")  # tests what safe mode refuses
    t.out("set shell_timeout 0.5")
    t.out(f"cd {tmp_path}")
    assert "Timed out" in t.err("sleep 5")


def test_context_directory_prompt_and_special_paths(t, sh):
    ctx = TraceContext("exceptions", "Cart.boom", "ZeroDivisionError", {"d": 0, "z": 42})
    STORE.add(ctx)
    assert t.out("ls ~~") == "/osh/recent/" + "/".join(ctx.path)
    t.out("cd ~~")
    assert sh.prompt() == f"Cart..{ctx.timestamp.split('-', 1)[1]}> "
    assert t.out("ls").split() == ["__trc", "d", "z"]
    assert t.out("d + z") == "42"
    t.out("cd __trc")
    assert sh.prompt() == "osh..__trc> "
    t.out("cd")
    assert sh.cwd == ("osh", "recent", *ctx.path)
    t.out("cd ~~g")
    t.out(f"cd ~{ctx.id}")
    assert sh.cwd == ("osh", "recent", *ctx.path)
    t.out("cd ~~/__trc")
    assert sh.cwd[-1] == "__trc"


def test_work_dir_path(shop, tmp_path):
    from otrace.shell.session import Session

    s = Session(vars(shop), work_dir=str(tmp_path), allow_unsafe=True)
    s.execute("set safe_mode False")  # safe mode does not browse the real filesystem
    (tmp_path / "f.txt").write_text("")
    s.execute("cd ~~w")
    assert s.cwd == tuple(p for p in str(tmp_path).split(os.sep) if p)
    s.close()


def test_huge_dict_listing_is_bounded(t, sh, shop):
    shop.big = {f"k{i}": i for i in range(1_000_000)}
    t.out("cd big")
    r = sh.execute("ls")
    assert "showing 1000 of 1000000" in r.err
    assert len(r.out.split()) == 1000
    assert t.out("k999999") == "999999"


def test_hostile_objects(t, sh, shop):
    t.out("set safe_mode False")  # tests what safe mode refuses

    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr")

        def __dir__(self):
            raise RuntimeError("no dir")

        @property
        def bad(self):
            raise ValueError("property fails")

    shop.h = Hostile()
    assert t("ls -l h").startswith("h = <Hostile")
    t.out("cd h")
    assert t.out("ls") == ""
    assert "property fails" in t.err("bad")
    assert t("pr _otrace_value").startswith("<Hostile")


def test_evicted_context_is_reported_stale_and_cd_goes_home(t, sh):
    from tests.rt import PARAMS

    STORE.add(TraceContext("traces", "f", "call", {"a": 1}))
    t.out("cd ~~")
    PARAMS.max_recent = 1
    STORE.add(TraceContext("traces", "g", "call", {"b": 2}))
    assert "Stale directory" in t.err("ls")
    assert "Stale directory" in t.err("a")
    t.out("cd")
    assert sh.cwd == ("osh", "globals")
    t.out("cd ~~")
    assert t.out("b") == "2"


def test_ls_modules_and_time_order(t, sh, shop):
    import json

    shop.json_module = json
    assert t.out("ls -m") == "json_module"
    assert "json_module" in t.out("ls -mc").split() and "Cart" in t.out("ls -mc").split()
    first = TraceContext("traces", "zeta", "call", {})
    STORE.add(first)
    second = TraceContext("traces", "alpha", "call", {})
    STORE.add(second)
    t.out("cd /osh/all")
    assert t.out("ls").split() == sorted([first.id, second.id])
    assert t.out("ls -t").split() == [first.id, second.id]  # oldest first, not by name
