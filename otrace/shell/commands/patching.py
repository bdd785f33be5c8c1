"""Live patching from the shell: edit (patch a function or method) and unpatch.

The new source comes from the editor, from a file (``edit X < /path``) or from the lines that
follow (``edit X <<EOF`` ... ``EOF``, for scripts and .trc files; or the ``here_doc`` given
to ``OShell.execute``).  The change itself is made by :mod:`otrace.tracing.patching`, on the
program's event loop through the program's door to it (``OShell(eventloop_callback=...)``
or ``otrace.tornado.attach``; see :func:`otrace.holds.call_on_loop`).

Threads: the commands run in the console's thread; the editor runs synchronously there.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import tempfile
import types
from typing import Any

import otrace.tracing.patching as engine
from otrace.errors import OTraceError, PatchError, PathError, SafeModeError, UsageError
from otrace.shell.commands.inspect import source_of
from otrace.shell.redirect import read_input, write_output
from otrace.shell.registry import Arg, Args, Option, command
from otrace.shell.targets import resolve_target
from otrace.shell.tokens import tokenize

SAFE_MODE_MESSAGE = "Patching/unpatching not permitted in safe mode; set safe_mode False"
PATCHES_DIR = ("osh", "patches")


def _check_safe(sh) -> None:
    if sh.params.safe_mode or not sh.allow_unsafe:
        raise SafeModeError(SAFE_MODE_MESSAGE)


def patch_target(sh, text: str) -> tuple[Any, str, str]:
    """(parent to patch, attribute, patch name) for a target typed in globals or patches.

    A method named through a subclass that inherits it is patched on that subclass.
    """
    cwd = sh.cwd
    if cwd[:2] == PATCHES_DIR and not text.startswith("/"):
        name = text or (cwd[2] if len(cwd) > 2 else "")
        if not name:
            raise UsageError("Name a patch (see ls /osh/patches)")
        p = sh.runtime.patches.get(name)
        if p is None:
            raise PathError(f"Invalid patch class/method: {name}")
        return p.parent, p.attr, name
    parts = sh.tree.parts(text, cwd) if text else cwd
    if parts[:2] != ("osh", "globals") or len(parts) < 3:
        raise UsageError("Patching only works in subdirectory of globals/patches")
    try:
        tgt = resolve_target(sh, text or "/" + "/".join(parts))
        res = sh.tree.resolve(parts)
    except OTraceError:
        private = _private_target(sh, parts)
        if private is None:
            raise PathError(f"Invalid patch class/method: {text}") from None
        return private
    if tgt.is_class:
        raise PatchError("Class patching not yet implemented; patch methods individually")
    named = res.parent
    # type(), not isinstance: a program's __class__ may raise
    if issubclass(type(res.value), types.MethodType) and not issubclass(type(named), type):
        owner = res.value.__self__
        named = owner if issubclass(type(owner), type) else type(owner)
    if (
        issubclass(type(named), type)
        and issubclass(type(tgt.parent), type)
        and named is not tgt.parent
        and issubclass(named, tgt.parent)
    ):
        return named, tgt.attr, f"{named.__name__}.{tgt.name.rsplit('.', 1)[-1]}"
    return tgt.parent, tgt.attr, tgt.name


def _private_target(sh, parts: tuple[str, ...]) -> tuple[Any, str, str] | None:
    """``Class.__name`` typed as in the source: the attribute is ``_Class__name``."""
    last = parts[-1]
    if not (last.startswith("__") and not last.endswith("__")):
        return None
    try:
        cls = sh.tree.resolve(parts[:-1]).value
    except OTraceError:
        return None
    if not inspect.isclass(cls):
        cls = type(cls)
    mangled = f"_{cls.__name__.lstrip('_')}{last}"
    if mangled not in vars(cls):
        return None
    return cls, mangled, f"{cls.__name__}.{last}"


def _without_decorators(text: str) -> str:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    first = tree.body[0] if tree.body else None
    if isinstance(first, (ast.FunctionDef, ast.AsyncFunctionDef)) and first.decorator_list:
        return "".join(text.splitlines(True)[first.lineno - 1 :])
    return text


def editor_command(sh) -> list[str]:
    """The editor: the ``editor`` parameter, else $VISUAL, else $EDITOR, else vi."""
    editor = sh.params.editor or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return [w.text for w in tokenize(editor)]


def run_editor(sh, text: str, label: str) -> str:
    """Edit ``text`` in a temporary .py file with the editor, synchronously; the saved text."""
    remote = sh.hooks.get("editor")  # a console edits with the operator's own editor
    if remote is not None:
        return remote(text, label)
    return edit_in_file(editor_command(sh), text, label)


def edit_in_file(command: list[str], text: str, label: str) -> str:
    """Run ``command FILE`` on a temporary .py file holding ``text``; the saved text.

    Shared by the shell's ``edit`` and the console clients that edit with the operator's own
    editor.  Blocks until the editor exits: call it from a session or console thread only.
    """
    fd, path = tempfile.mkstemp(prefix=f"otrace-{label}-", suffix=".py")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        cmd = command + [path]
        try:
            proc = subprocess.run(cmd, check=False)
        except OSError as exc:
            raise OTraceError(f"Cannot run editor {cmd[0]!r}: {exc.strerror}") from None
        if proc.returncode != 0:
            raise OTraceError(
                f"Editor {cmd[0]!r} failed (exit status {proc.returncode}); nothing patched"
            )
        with open(path, encoding="utf-8") as f:
            return f.read()
    finally:
        os.unlink(path)


def _current_source(parent: Any, attr: str) -> str:
    obj = vars(parent).get(attr) if not isinstance(parent, dict) else parent.get(attr)
    if obj is None and inspect.isclass(parent):
        obj = inspect.getattr_static(parent, attr, None)
    if obj is None:
        raise OTraceError("Error: source not found; specify source filename")
    try:
        return _without_decorators(source_of(obj))
    except OTraceError:
        raise OTraceError("Error: source not found; specify source filename") from None


def apply_patch(sh, parent: Any, attr: str, name: str, source: str, force: bool) -> None:
    """Install ``source`` as the patch ``name`` and report it."""
    p = engine.patch(
        parent,
        attr,
        source,
        name=name,
        repatch=force,
        table=sh.runtime.patches,
    )
    sh.patches[name] = p.function
    sh.out.write(f"Patched {name}")
    if p.mode != "in place":
        sh.out.write(f"  (attribute rebound: {p.note})")


@command(
    "edit",
    options=(Option("f", "force: patch again an already patched function"),),
    args=(Arg("class.method|function", "target", optional=True),),
    redirects=("<", "<<"),
    unsafe="Patching/unpatching",
)
def edit(sh, args: Args) -> None:
    """Patch a function or method of the running program with new source (from the editor).

    The current source (the patch's, if patched) opens in the editor (parameter 'editor',
    else $VISUAL, else $EDITOR, else vi); what is saved is compiled in the function's own
    module and installed without restarting.  'edit X < /path' reads the new source from a
    file; 'edit X <<EOF' reads the lines that follow, up to EOF.  The function object is
    changed in place, so tracing, aliases and stored callbacks run the new code; the
    original stays reachable as the new function's _otrace_unpatched_function.  Patches are
    listed in /osh/patches; 'unpatch' puts the original back.  Refused in safe mode.
    """
    _check_safe(sh)
    parent, attr, name = patch_target(sh, args.words[0] if args.words else "")
    force = args.flag("f")
    if name in sh.runtime.patches and not force:
        raise PatchError(f"Error: specify '-f' option to force editing of patched {name}")

    def finish(source: str) -> None:
        apply_patch(sh, parent, attr, name, source, force)

    if read_input(sh, args, finish, f"Expecting here_doc input for editing {name}"):
        return
    old = _current_source(parent, attr)
    new = run_editor(sh, old, name.replace(".", "_"))
    if new.strip() == old.strip():
        sh.out.write("No changes")
        return
    finish(new)


@command(
    "unpatch",
    args=(Arg("class.method|function|*", "target", optional=True),),
    redirects=(">",),
    unsafe="Patching/unpatching",
)
def unpatch(sh, args: Args) -> None:
    """Undo a patch: the original code runs again ('unpatch *' in /osh/patches: all of them).

    'unpatch X > /path' first saves the patch's source to the file, so it can be applied
    again later with 'edit X < /path'.  Refused in safe mode.
    """
    _check_safe(sh)
    text = args.words[0] if args.words else ""
    if text == "*":
        if sh.cwd[:2] != PATCHES_DIR:
            raise UsageError("'unpatch *' only works in /osh/patches")
        if args.stdout is not None:
            raise UsageError("Can save only one patch to a file")
        names = list(sh.patches) or list(sh.runtime.patches)
        if not names:
            sh.out.write("No patches")
        for name in names:
            _unpatch_one(sh, name)
        return
    _parent, _attr, name = patch_target(sh, text)
    p = sh.runtime.patches.get(name)
    if p is None:
        raise PatchError(f"Unpatching failed for {name}: not patched")
    write_output(sh, args, p.source)
    _unpatch_one(sh, name)


def _unpatch_one(sh, name: str) -> None:
    try:
        engine.unpatch(name, table=sh.runtime.patches)
    except PatchError:
        sh.patches.pop(name, None)
        raise
    sh.patches.pop(name, None)
    sh.out.write(f"Unpatching {name}")
