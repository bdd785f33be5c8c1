"""Post-mortem in a notebook: real notebooks run headlessly (nbclient + ipykernel) against a
store written by a real traced program.

The documentation notebook ``docs/notebook/PostMortem.ipynb`` is one of them: its outputs
here are checked, and with ``OTRACE_WRITE_DOCS=1`` the executed notebook is written back to
``docs/`` (that is how its committed outputs are made).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOCS = ROOT / "docs" / "notebook"
sys.path.insert(0, str(ROOT / "tests" / "persist"))
import crafted  # noqa: E402

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """The kernel imports this tree and keeps its files (history, connection) in tmp_path."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("MPLBACKEND", "agg")


@pytest.fixture
def shop_store(tmp_path):
    """Run docs/notebook/shop.py under otrace (shop.trc sets pickle_file); the run's dir."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("shop.py", "shop.trc"):
        shutil.copy(DOCS / name, work / name)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "otrace", "-f", "main", "shop.py"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Tracing Cart.checkout" in done.stdout, done.stdout
    assert (work / "trace.db").is_file()
    return work


def execute(nb, cwd: Path):
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return nb


def outputs(cell) -> dict[str, str]:
    """Everything a cell showed, by kind: stdout, stderr, text/plain, text/html, error."""
    seen: dict[str, str] = {}

    def add(key: str, text: str) -> None:
        seen[key] = seen.get(key, "") + text

    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            add(out["name"], out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            for mime in ("text/plain", "text/html"):
                if mime in out["data"]:
                    add(mime, out["data"][mime])
        elif out["output_type"] == "error":
            add("error", f"{out['ename']}: {out['evalue']}")
    return seen


def by_source(nb, start: str):
    """The outputs of the one code cell whose first line is ``start`` (else that starts so)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    found = [c for c in code if c.source.split("\n")[0] == start]
    (cell,) = found or [c for c in code if c.source.startswith(start)]
    return outputs(cell)


def test_docs_notebook_against_a_traced_program(shop_store, kernel_env):
    nb = nbformat.read(DOCS / "PostMortem.ipynb", as_version=4)
    execute(nb, shop_store)

    opened = by_source(nb, "%otrace open")
    assert "2 contexts in trace.db (loaded as data" in opened["stdout"]
    listing = by_source(nb, "%otrace ls")
    assert listing["text/plain"].split() == ["exceptions", "traces"]
    assert "<table" in listing["text/html"] and ">exceptions<" in listing["text/html"]

    cd = by_source(nb, "%otrace cd")
    assert cd["text/plain"].startswith(
        "/osh/pickled/exceptions/Cart.checkout/ex-ZeroDivisionError/"
    )
    assert cd["text/plain"].endswith("/:")

    long = by_source(nb, "%otrace ls -l")
    rows = dict(
        (name.strip(), value)
        for name, _, value in (line.partition(" = ") for line in long["text/plain"].splitlines())
        if value
    )
    assert rows["discount"] == "0" and rows["total"] == "3.0"
    # the writer's text of a program object: class and attributes, not its own __repr__
    assert rows["self"].startswith("<restricted shop.Cart: Cart(owner='ada', items={")
    assert rows["guard"].startswith("<unpicklable _thread.lock")
    assert "<b>discount</b>" in long["text/html"]

    shown = by_source(nb, "ctx = %otrace get ~~")
    page = shown["text/html"]
    assert "ZeroDivisionError: float division by zero" in page
    assert "return round(total / discount, 2)" in page  # the frame's source line
    assert "tb-cur" in page and "raised here" in page
    assert "&lt;restricted shop.Cart: Cart(owner=&#x27;ada&#x27;, items={" in page  # a local
    assert ".otrace-tb-embed .tb-frame" in page  # styles scoped to the fragment
    assert "<script" not in page
    # library frames (runpy, otrace's own command line) are there, collapsed
    assert '<details class="tb-frame tb-lib" data-index="0">' in page
    assert '<details class="tb-frame tb-last" data-index=' in page  # the innermost, open
    assert "tb-frames show-lib" in page and "(collapsed)" in page
    assert "__trc (" in page and "<th>thread</th>" in page  # the __trc fields
    text = shown["text/plain"]  # the fallback for front ends without HTML
    assert text.startswith("ZeroDivisionError: float division by zero")
    assert "in checkout" in text and "discount = 0" in text

    assert by_source(nb, "%%otrace frame -1\nwhat_if = ")["text/plain"] == "1.5"
    again = " ".join(by_source(nb, "%%otrace frame -1\nwhat_if, self")["text/plain"].split())
    assert again.startswith("(1.5, <restricted shop.Cart")
    assert "'apple': (3, 0.5)" in again
    touched = by_source(nb, "%%otrace frame -1\nguard.acquire()")["error"]
    assert touched.startswith("PlaceholderError: acquire: the stored value is a placeholder")
    assert "_thread.lock" in touched
    method = by_source(nb, "%%otrace frame -1\nself.checkout(1)")["error"]
    assert "PlaceholderError: checkout: not stored in this stand-in for shop.Cart" in method

    ids = by_source(nb, "import otrace.jupyter")["text/plain"]
    assert "Cart.checkout:ex-ZeroDivisionError:" in ids and "Cart.add:tr-qty>2:" in ids
    call = by_source(nb, "call = stored")
    assert call["text/plain"] == "(3, 'apple')"

    if os.environ.get("OTRACE_WRITE_DOCS") == "1":
        nbformat.write(nb, DOCS / "PostMortem.ipynb")


def test_crafted_file_runs_no_code_in_a_notebook(tmp_path, kernel_env):
    marker = tmp_path / "pwned"
    crafted.craft(tmp_path / "evil.db", marker)
    cells = [
        "%load_ext otrace.jupyter",
        "%otrace open evil.db",
        "%otrace cd exceptions/*/ex-Boom/*/:",
        "%otrace ls -l",
        "ctx = %otrace get .\nctx",
        "%%otrace frame 0\nevil._args, count * 2",
        "import otrace.jupyter\nstored = otrace.jupyter.load('evil.db')\n"
        "[stored[k]['count'] for k in stored]",
        "%otrace open --trust nosuch.db",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.cells[-1].metadata["tags"] = ["raises-exception"]
    execute(nb, tmp_path)
    assert not marker.exists()
    seen = [outputs(c) for c in nb.cells]
    for out in seen:
        for text in out.values():
            assert "\x1b" not in text and "\x07" not in text, repr(text)
    assert "Evil\\x1b[2J.run" in seen[2]["text/plain"]
    assert "&lt;restricted posix.system" in seen[4]["text/html"]
    assert " ".join(seen[5]["text/plain"].split()) == f"(('touch {marker}',), 6)"
    assert seen[6]["text/plain"] == "[3]"
    # an otrace error is one line, as IPython shows usage errors (no traceback)
    assert seen[7]["stderr"].startswith("UsageError: ") and "no such file" in seen[7]["stderr"]
    assert "Traceback" not in seen[7]["stderr"]
