"""Moving around and listing: cd, cdls, pwd, pushd, popd, swapd, ls."""

from __future__ import annotations

import inspect
from typing import Any

from otrace.contexts import TraceContext
from otrace.contexts.record import parse_trace_id
from otrace.errors import PathError, SafeModeError, UsageError
from otrace.shell import listing
from otrace.shell.registry import Arg, Args, DashWords, Option, command
from otrace.vfs import paths
from otrace.vfs.nodes import is_dir_like
from otrace.vfs.paths import Parts
from otrace.vfs.pure import Unread


def change_dir(sh, text: str | None) -> None:
    """Make ``text`` the cwd, atomically: on any error the cwd stays where it was."""
    if text is None or text == "":
        target = sh.default_dir()
    elif text.startswith("~") and not text.startswith("~~") and ":" in text:
        target = _trace_id_path(sh, text[1:])
    elif text == ":" and ":" in sh.cwd:
        target = sh.cwd[: sh.cwd.index(":") + 1]
    else:
        matches = (
            sh.tree.glob(text, sh.cwd, most=2)
            if any(paths.has_glob(c) for c in text.split("/"))
            else None
        )
        if matches is not None:
            if not matches:
                raise PathError(f"Failed to change to directory '{text}'")
            if len(matches) > 1:
                raise PathError(f"Ambiguous directory change '{text}' (several matches)")
            target = matches[0].parts
        else:
            target = sh.tree.parts(text, sh.cwd)
    try:
        value = sh.tree.resolve(target).value
    except PathError as exc:
        shown = text if text else paths.render(target)
        raise PathError(f"Failed to change to directory '{shown}': {exc}") from None
    if not is_dir_like(value):
        raise PathError(
            f"Not a directory: '{text}'" if value is not None else f"Stale directory '{text}'"
        )
    sh.cwd = target


def _trace_id_path(sh, trace_id: str) -> Parts:
    try:
        kind, name, ctxid, ts = parse_trace_id(trace_id)
    except ValueError as exc:
        raise PathError(str(exc)) from None
    ctx = sh.store.get(trace_id)
    area = (
        "saved"
        if ctx is not None and sh.store.is_saved(ctx) and not _in_recent(sh, ctx)
        else "recent"
    )
    return ("osh", area, kind, name, ctxid, ts)


def _in_recent(sh, ctx: TraceContext) -> bool:
    kind, name, ctxid, ts = ctx.path
    return sh.store.recent.get(kind, {}).get(name, {}).get(ctxid, {}).get(ts) is ctx


PATH = (Arg("path", optional=True),)


@command(
    "cd",
    args=PATH,
    chains=True,
    outside_osh=True,
    aliases={
        "cde": "cd :",
        "cdt": "cd __trc",
        "up": "cd __up",
        "dn": "cd __down",
        "uv": "cd __up ; view -i",
        "dv": "cd __down ; view -i",
    },
)
def cd(sh, args: Args) -> None:
    """Change directory (no path: the default -- the context root, /osh/globals or home).

    Paths may be absolute (/osh/recent, /tmp), relative (.., Cart/add_item), dotted inside
    /osh/globals (Cart.add_item), or special: ~~ (newest trace context), ~~g (globals),
    ~~w (work directory), ~<trace-id> (that context), : (back to the entity root).
    A glob must match exactly one entry.
    """
    if args.words and args.words[0] == "~~" and sh.store.newest is None:
        sh.out.write("No trace context yet: ~~ is /osh/globals until one is recorded")
    change_dir(sh, args.words[0] if args.words else None)


@command(
    "cdls",
    args=(Arg("path", optional=True), Arg("ls options and names", optional=True, repeat=True)),
    chains=True,
    outside_osh=True,
    parse_options=False,
)
def cdls(sh, args: Args) -> None:
    """Change directory, then list it (cd path; ls ...)."""
    words = list(args.words)
    target = None
    if words and not words[0].startswith("-"):
        target = words.pop(0)
    change_dir(sh, target)
    from otrace.shell.parsing import parse
    from otrace.shell.registry import REGISTRY

    if sh.in_osh:
        ls_cmd = REGISTRY["ls"]
        ls_cmd.func(sh, parse(ls_cmd, words))
    else:
        sh.run_unix("ls " + " ".join(words), sh.out)


@command(
    "pwd",
    options=(Option("a", "also show the directory stack, most recent first"),),
    outside_osh=True,
)
def pwd(sh, args: Args) -> None:
    """Print the current directory."""
    sh.out.write(paths.render(sh.cwd))
    if args.flag("a"):
        for parts in reversed(sh.dirstack):
            sh.out.write(paths.render(parts))


@command("pushd", args=PATH, chains=True, outside_osh=True)
def pushd(sh, args: Args) -> None:
    """Remember the current directory on the stack, then cd to path (no path: exchange the
    current directory with the top of the stack, like swapd)."""
    if not args.words:
        if not sh.dirstack:
            raise UsageError(
                "pushd: no other directory; pushd PATH remembers this one, goes to PATH"
            )
        swapd(sh, args)
        return
    here = sh.cwd
    change_dir(sh, args.words[0] if args.words else None)
    sh.dirstack.append(here)


@command(
    "popd",
    options=(Option("a", "go to the oldest directory and empty the stack"),),
    chains=True,
    outside_osh=True,
)
def popd(sh, args: Args) -> None:
    """Go back to the most recently pushed directory."""
    if not sh.dirstack:
        raise UsageError("Nothing to pop")
    target = sh.dirstack[0] if args.flag("a") else sh.dirstack[-1]
    change_dir(sh, paths.render(target))
    if args.flag("a"):
        sh.dirstack.clear()
    else:
        sh.dirstack.pop()


@command("swapd", chains=True, outside_osh=True)
def swapd(sh, args: Args) -> None:
    """Exchange the current directory with the top of the stack."""
    if not sh.dirstack:
        raise UsageError("Nothing to swap")
    here = sh.cwd
    change_dir(sh, paths.render(sh.dirstack[-1]))
    sh.dirstack[-1] = here


def _exclude_class(sh, word: str, here: Any) -> type | None:
    """The class whose attributes ``-.``, ``-..`` or ``-.Name`` leave out."""
    cls = here if inspect.isclass(here) else type(here)
    dots = word[1:]
    if set(dots) == {"."}:
        mro = cls.__mro__
        index = len(dots) - 1
        if index >= len(mro):
            raise UsageError(f"ls: {cls.__name__} has no base number {index}")
        return mro[index]
    name = dots[1:]
    for base in (sh.cwd, ("osh", "globals")):
        try:
            found = sh.tree.resolve(sh.tree.parts(name, base)).value
        except PathError:
            continue
        if inspect.isclass(found):
            return found
    raise UsageError(f"ls: no class named {name!r}")


LS_OPTIONS = (
    Option("a", "also show __hidden__ names"),
    Option("c", "only classes"),
    Option("f", "only functions and methods"),
    Option("m", "only modules"),
    Option("v", "only variables (anything else)"),
    Option("l", "long listing: name = value"),
    Option("t", "order by time (trace contexts), else by name"),
    Option("C", "columns (the default; accepted for the unix-style alias)"),
)


@command(
    "ls",
    options=LS_OPTIONS,
    args=(Arg("path|glob", optional=True, repeat=True),),
    dash_words=DashWords("-.|-..|-.Base", lambda w: w.startswith("-.")),
)
def ls(sh, args: Args) -> None:
    """List the current directory, or the paths matching the names given (like ls -d).

    -. leaves out what the object's class defines (showing only its own attributes),
    -.. what the first base class defines (-... the second), -.Name what class Name defines.
    To list inside a directory use 'cdls dir' or 'ls dir/*'.
    """
    kinds = {k for k in "cfmv" if args.flag(k)}
    width = sh.width
    if args.words:
        _ls_operands(sh, args, kinds, width)
        return
    here = sh.here().value
    d = sh.tree.view(here)
    safe = bool(sh.params.safe_mode)
    limit = sh.params.ls_limit
    count = d.count()
    names = d.names(limit if count is not None and count > limit else None)
    if count is None and len(names) > limit:  # attribute views: dir() has no cheap count
        count = len(names)
        names = names[:limit]
    if not args.flag("a"):
        names = [n for n in names if not listing.is_hidden(n)]
    for word in args.extra:
        excluded = _exclude_class(sh, word, here)
        if excluded is not None:
            inherited = set(dir(excluded))
            names = [n for n in names if n not in inherited]
    pairs: list[tuple[str, Any]] | None = None
    if kinds or args.flag("l") or args.flag("t"):
        pairs = []
        for n in names:
            try:
                pairs.append((n, d.get(n)))
            except KeyError:
                continue
            except SafeModeError as exc:  # a property, ...: listed, not read
                pairs.append((n, Unread(str(exc).split(" not permitted")[0])))
        if kinds:
            pairs = [(n, v) for n, v in pairs if listing.kind_of(v) in kinds]
    if args.flag("t") and pairs is not None:
        pairs.sort(key=lambda p: (_time_of(p[1]), p[0]))
    elif pairs is not None:
        pairs.sort(key=lambda p: p[0])
    else:
        names.sort()
    if args.flag("l"):
        for line in listing.long_lines(pairs or [], width, safe):
            sh.out.write(line)
    else:
        shown = [n for n, _ in pairs] if pairs is not None else names
        for row in listing.columns(shown, width):
            sh.out.write(row)
    if count is not None and count > limit:
        which = "the newest " if getattr(d, "chronological", False) else ""
        sh.out.error(f"ls: showing {which}{limit} of {count} entries (set ls_limit, or ls a glob)")


def _time_of(value: Any) -> float:
    if issubclass(type(value), TraceContext):  # type(): a program's __class__ may raise
        return value.created
    return float("inf")


def _ls_operands(sh, args: Args, kinds: set[str], width: int) -> None:
    found: list[tuple[str, Any]] = []
    for word in args.words:
        matches = sh.tree.glob(word, sh.cwd, limit=sh.params.ls_limit)
        if not matches:
            raise PathError(f"no matches '{word}'")
        absolute = sh.tree.expand(word).startswith("/") or word.startswith("~")
        for m in matches:
            name = m.text if absolute else paths.relative(m.parts, sh.cwd)
            found.append((name, m.value))
    if kinds:
        found = [(n, v) for n, v in found if listing.kind_of(v) in kinds]
    if not args.flag("a"):
        found = [(n, v) for n, v in found if not listing.is_hidden(n.rsplit("/", 1)[-1])]
    if args.flag("t"):
        found.sort(key=lambda p: (_time_of(p[1]), p[0]))
    if args.flag("l"):
        for line in listing.long_lines(found, width, bool(sh.params.safe_mode)):
            sh.out.write(line)
    else:
        for row in listing.columns([n for n, _ in found], width):
            sh.out.write(row)
