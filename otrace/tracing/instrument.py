"""In-place instrumentation: a traced function runs instrumented code in its own ``__code__``.

Instead of rebinding an attribute to a wrapper, the function object itself gets a new code
object compiled from its own source with the trace hooks added, the way ``edit`` already
swaps ``__code__``.  So the program keeps the same function object (identity, pickling by
name, ``__defaults__``, ``inspect`` without ``__wrapped__``), no frame is added to the stack
and no reference to the arguments is kept beyond what the function itself holds.

What the instrumented code adds (all of it reads constants of the code object; nothing is
added to the module's globals):

* exceptions-only trace: ``try: <body> except Exception: PROBE.exc(); raise`` -- free on a call
  that does not raise (3.11+ exception tables);
* a condition: before the body ``_otrace_call_ = None`` and, while the trace is published,
  the condition's argument tests inline (``a == 1``) before ``PROBE.call(<args>)``; every
  ``return X`` becomes ``return X if _otrace_call_ is None else PROBE.ret(_otrace_call_, X)``.
  ``_otrace_call_`` is the one local added (seen by ``locals()``; ``co_varnames`` of the
  arguments are unchanged).

While no trace applies (or ``trace_active`` is off) the original code object runs again: an
installed but inactive trace costs nothing.  Code is built from the source ``linecache``
has; before anything is swapped the source is compiled unchanged and compared with the
running code (bytecode, names, variables, flags), so a file edited on disk after import is
refused (a wrapper is used instead; see :mod:`otrace.tracing.wrappers`).  Nothing is
executed: the function's code object is taken out of the compiled constants, so
decorators and default values do not run again.

Thread rules: :func:`instrument`, :meth:`Instrumented.apply` and :func:`set_code` run under
the registry lock (any thread); the probes run on the traced thread.
"""

from __future__ import annotations
import __future__

import ast
import copy
import inspect
import linecache
import sys
import threading
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any

from otrace.contexts.capture import hide_code
from otrace.errors import TraceError
from otrace.log import get_logger
from otrace.tracing import engine, handlers
from otrace.tracing.conditions import And, ArgTest, Predicate
from otrace.tracing.handled import RERAISING, leaves

log = get_logger("tracing")

_SITE = "__otrace_site__"
_PROBE = "__otrace_probe__"
_CALL = "_otrace_call_"
_SCOPE = "__otrace_scope__"
_COMPARED = (
    "co_code",
    "co_names",
    "co_varnames",
    "co_freevars",
    "co_cellvars",
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
)
_CO_NESTED = 0x10
_TYPE_PARAMS: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
_KIND_FLAGS = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)

# Set while this thread records: traced functions called by recording itself (a condition's
# __eq__, a repr asked for) run untraced, so tracing never re-enters itself.
_busy = threading.local()


def busy() -> bool:
    return getattr(_busy, "on", False)


class Probe:
    """What instrumented code calls (a constant of that code); one per traced function."""

    __slots__ = ("site",)

    def __init__(self, site: engine.Site) -> None:
        self.site = site

    def call(self, args: tuple, kwargs: dict) -> handlers.Call | None:
        site = self.site
        state = site.state
        if state is None or busy():
            return None
        spec, quick, _ = state
        _busy.on = True
        try:
            if (quick is None or not quick(args, kwargs)) and not site.tracer.params.trace_related:
                return None
            return handlers.on_call(site, spec, args, kwargs, sys._getframe(2))
        finally:
            _busy.on = False

    def ret(self, call: handlers.Call, value: Any) -> Any:
        if not busy():
            _busy.on = True
            try:
                handlers.on_return(call, value)
            finally:
                _busy.on = False
        return value

    async def ret_async(self, call: handlers.Call, value: Any) -> Any:
        hold = None
        if not busy():
            _busy.on = True
            try:
                hold = handlers.on_return(call, value)
            finally:
                _busy.on = False
        if hold is not None:
            await hold
        return value

    def exc(self) -> None:
        state = self.site.state
        if state is None or busy():
            return
        exc = sys.exc_info()[1]
        frame = sys._getframe(1)
        record_exception(self.site, state[0], exc, frame.f_back)


def record_exception(site: engine.Site, spec: Any, exc: Any, caller: Any) -> None:
    """Record ``exc`` leaving ``site``'s function towards ``caller`` (unless it is handled there)."""
    if not isinstance(exc, Exception) or busy():
        return
    try:
        if not site.tracer.params.trace_handled and not leaves(exc, caller):
            return
    except Exception:  # pragma: no cover - deciding must never break the program
        pass
    _busy.on = True
    try:
        handlers.on_exception(site, spec, exc, caller)
    finally:
        _busy.on = False


RERAISING.add(Probe)
hide_code(Probe.call.__code__, Probe.ret.__code__, Probe.ret_async.__code__, Probe.exc.__code__)


# -- building code -------------------------------------------------------------------------


def _future_flags(code: CodeType) -> int:
    flags = 0
    for name in __future__.all_feature_names:
        feature = getattr(__future__, name)
        if code.co_flags & feature.compiler_flag:
            flags |= feature.compiler_flag
    return flags


def _function_source(func: FunctionType) -> tuple[str, int]:
    """The function's source block and the line offset to parse it at (TraceError if none)."""
    code = func.__code__
    if code.co_name == "<lambda>":
        raise TraceError("a lambda has no statement to instrument")
    lines = linecache.getlines(code.co_filename, func.__globals__)
    if not lines or code.co_firstlineno > len(lines):
        raise TraceError("its source is not available")
    try:
        block = inspect.getblock(lines[code.co_firstlineno - 1 :])
    except Exception as exc:
        raise TraceError(f"its source could not be read ({type(exc).__name__})") from None
    text = "".join(block)
    offset = code.co_firstlineno - 1
    if text[:1].isspace():
        # keep the columns (tracebacks point at them): parse inside an if block
        text, offset = "if 1:\n" + text, offset - 1
    return text, offset


def _function_node(
    func: FunctionType, source: tuple[str, int]
) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The function's definition parsed from ``source``, at its real lines and columns."""
    code = func.__code__
    text, offset = source
    try:
        tree = ast.parse(text, code.co_filename)
    except SyntaxError:
        raise TraceError("its source does not parse (edited on disk?)") from None
    ast.increment_lineno(tree, offset)
    node: Any = tree.body[0] if tree.body else None
    if isinstance(node, ast.If):
        node = node.body[0] if node.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != code.co_name:
        raise TraceError("its source does not define it (edited on disk?)")
    return node


def _module_for(
    func: FunctionType, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> tuple[ast.Module, bool]:
    """A module placing ``node`` where its free variables and class name resolve as before."""
    code = func.__code__
    parts = code.co_qualname.split(".")
    owner = parts[-2] if len(parts) > 1 and parts[-2] != "<locals>" else None
    stmt: ast.stmt = node
    if owner is not None:
        stmt = ast.ClassDef(
            name=owner, bases=[], keywords=[], body=[node], decorator_list=[], **_TYPE_PARAMS
        )
    free = [v for v in code.co_freevars if v != "__class__"]
    if free:
        body: list[ast.stmt] = [
            ast.Assign(targets=[ast.Name(v, ast.Store())], value=ast.Constant(None)) for v in free
        ]
        body.append(stmt)
        scope = ast.FunctionDef(
            name=_SCOPE,
            args=ast.arguments([], [], None, [], [], None, []),
            body=body,
            decorator_list=[],
            returns=None,
            **_TYPE_PARAMS,
        )
        stmt = scope
    # The compiler treats names the module imports differently (no LOAD_METHOD on them), so
    # the same names are marked imported here (these statements are never run).
    marks: list[ast.stmt] = [
        ast.Import([ast.alias("_otrace_never_imported", name)])
        for name in sorted(_module_imports(code.co_filename, func.__globals__))
    ]
    for mark in marks:
        _locate(mark, node)
    if stmt is not node:
        _locate(stmt, node)
    module = ast.Module(body=[*marks, stmt], type_ignores=[])
    return module, bool(free)


def _locate(new: ast.AST, like: ast.AST) -> None:
    """Give ``new`` and its children without a location ``like``'s (not the whole tree:
    ``ast.fix_missing_locations`` over every node cost seconds for a few hundred functions)."""
    todo = [new]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.stmt, ast.expr, ast.excepthandler, ast.arg, ast.alias)):
            if getattr(node, "lineno", None) is not None and node is not new:
                continue  # an original node: it and its children are located
            if getattr(node, "lineno", None) is None:
                ast.copy_location(node, like)
        todo.extend(ast.iter_child_nodes(node))


_imports: dict[str, tuple[int, frozenset[str]]] = {}


def _module_imports(filename: str, module_globals: dict) -> frozenset[str]:
    """Names bound by ``import`` at the top level of the module in ``filename``."""
    lines = linecache.getlines(filename, module_globals)
    key = hash(tuple(lines))
    cached = _imports.get(filename)
    if cached is not None and cached[0] == key:
        return cached[1]
    names: set[str] = set()
    try:
        tree = ast.parse("".join(lines), filename)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name.partition(".")[0]) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update((a.asname or a.name) for a in node.names if a.name != "*")
        else:
            todo.extend(ast.iter_child_nodes(node))
    result = frozenset(names)
    _imports[filename] = (key, result)
    return result


def _find_code(code: CodeType, name: str, firstlineno: int) -> CodeType | None:
    for const in code.co_consts:
        if isinstance(const, CodeType):
            if const.co_name == name and const.co_firstlineno == firstlineno:
                return const
            found = _find_code(const, name, firstlineno)
            if found is not None:
                return found
    return None


def _compile(func: FunctionType, module: ast.Module) -> CodeType:
    code = func.__code__
    compiled = compile(
        module, code.co_filename, "exec", flags=_future_flags(code), dont_inherit=True
    )
    found = _find_code(compiled, code.co_name, code.co_firstlineno)
    if found is None:  # pragma: no cover - the module holds the definition
        raise TraceError("its code was not found after compiling its source")
    return found


def _requalify(code: CodeType, old: str, new: str, flags: int | None = None) -> CodeType:
    """Give ``code`` (and the code nested in it) the original's qualified names."""
    consts = tuple(
        _requalify(c, old, new) if isinstance(c, CodeType) else c for c in code.co_consts
    )
    qual = code.co_qualname
    if qual == old or qual.startswith(old + "."):
        qual = new + qual[len(old) :]
    if flags is None:
        return code.replace(co_consts=consts, co_qualname=qual)
    return code.replace(co_consts=consts, co_qualname=qual, co_flags=flags)


def _same(a: CodeType, b: CodeType) -> bool:
    if any(getattr(a, f) != getattr(b, f) for f in _COMPARED):
        return False
    if (a.co_flags ^ b.co_flags) & ~_CO_NESTED:
        return False
    ca = [c for c in a.co_consts if not isinstance(c, CodeType)]
    cb = [c for c in b.co_consts if not isinstance(c, CodeType)]
    return ca == cb


# -- the transformations ---------------------------------------------------------------------


def _const(name: str) -> ast.Constant:
    return ast.Constant(name)


def _probe(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Attribute(_const(_PROBE), method, ast.Load()), list(args), [])


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


class _Returns(ast.NodeTransformer):
    """``return X`` -> ``return X if _otrace_call_ is None else PROBE.ret(_otrace_call_, X)``."""

    def __init__(self, is_async: bool, is_asyncgen: bool) -> None:
        self.is_async = is_async
        self.is_asyncgen = is_asyncgen

    def visit_FunctionDef(self, node: ast.AST) -> ast.AST:
        return node  # nested scopes keep their own returns

    visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = visit_FunctionDef

    def visit_Return(self, node: ast.Return) -> Any:
        if self.is_asyncgen:  # a bare return; no value allowed
            hook = ast.If(
                ast.Compare(_load(_CALL), [ast.IsNot()], [ast.Constant(None)]),
                [ast.Expr(_probe("ret", _load(_CALL), ast.Constant(None)))],
                [],
            )
            _locate(hook, node)
            return [hook, node]
        value = node.value if node.value is not None else ast.Constant(None)
        traced: ast.expr = _probe(
            "ret_async" if self.is_async else "ret", _load(_CALL), copy.deepcopy(value)
        )
        if self.is_async:
            traced = ast.Await(traced)
        node.value = ast.IfExp(
            ast.Compare(_load(_CALL), [ast.Is()], [ast.Constant(None)]), value, traced
        )
        like = value if getattr(value, "lineno", None) is not None else node
        _locate(node.value, like)
        return node


def _arguments(code: CodeType) -> tuple[ast.expr, ast.expr]:
    """``(a, b, *args)`` and ``{'k': k, **kwargs}`` rebuilt from the parameters."""
    names = code.co_varnames
    npos, nkw = code.co_argcount, code.co_kwonlyargcount
    items: list[ast.expr] = [_load(n) for n in names[:npos]]
    i = npos + nkw
    if code.co_flags & inspect.CO_VARARGS:
        items.append(ast.Starred(_load(names[i]), ast.Load()))
        i += 1
    keys: list[ast.expr | None] = [ast.Constant(n) for n in names[npos : npos + nkw]]
    values: list[ast.expr] = [_load(n) for n in names[npos : npos + nkw]]
    if code.co_flags & inspect.CO_VARKEYWORDS:
        keys.append(None)
        values.append(_load(names[i]))
    return ast.Tuple(items, ast.Load()), ast.Dict(keys, values)


def inline_tests(predicate: Predicate | None, params: set[str]) -> ast.expr | None:
    """The argument comparisons of ``predicate`` as one expression on the parameters, or None."""
    if predicate is None:
        return None
    parts = predicate.parts if isinstance(predicate, And) else (predicate,)
    if not all(isinstance(p, ArgTest) for p in parts):
        return None
    tests: list[ast.expr] = []
    for part in parts:
        assert isinstance(part, ArgTest)
        if part.uses_return or part.arg not in params:
            continue
        if not isinstance(part.value, (int, float, str, bool, type(None))):
            continue
        left: ast.expr = _load(part.arg)
        if part.attr:
            left = ast.Attribute(left, part.attr, ast.Load())
        op = {
            "==": ast.Eq(),
            "!=": ast.NotEq(),
            "<": ast.Lt(),
            "<=": ast.LtE(),
            ">": ast.Gt(),
            ">=": ast.GtE(),
        }[part.op]
        tests.append(ast.Compare(left, [op], [ast.Constant(part.value)]))
    if not tests:
        return None
    return tests[0] if len(tests) == 1 else ast.BoolOp(ast.And(), tests)


def _instrumented_node(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    code: CodeType,
    calls: bool,
    tests: ast.expr | None,
) -> ast.FunctionDef | ast.AsyncFunctionDef:
    node = copy.deepcopy(node)
    body = node.body
    doc: list[ast.stmt] = []
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        doc, body = body[:1], body[1:]
    if not body:
        body = [ast.Pass()]
    start = body[0]
    prologue: list[ast.stmt] = []
    flags = code.co_flags
    if calls:
        is_asyncgen = bool(flags & inspect.CO_ASYNC_GENERATOR)
        is_async = bool(flags & inspect.CO_COROUTINE)
        body = [_Returns(is_async, is_asyncgen).visit(stmt) for stmt in body]
        flat: list[ast.stmt] = []
        for stmt in body:
            flat.extend(stmt if isinstance(stmt, list) else [stmt])
        args, kwargs = _arguments(code)
        assign = ast.Assign([ast.Name(_CALL, ast.Store())], _probe("call", args, kwargs))
        guarded: list[ast.stmt] = [assign]
        if tests is not None:
            guarded = [
                ast.Try(
                    body=[ast.If(tests, [assign], [])],
                    handlers=[ast.ExceptHandler(_load("Exception"), None, [copy.deepcopy(assign)])],
                    orelse=[],
                    finalbody=[],
                )
            ]
        prologue = [
            ast.Assign([ast.Name(_CALL, ast.Store())], ast.Constant(None)),
            ast.If(
                ast.Compare(
                    ast.Attribute(_const(_SITE), "state", ast.Load()),
                    [ast.IsNot()],
                    [ast.Constant(None)],
                ),
                guarded,
                [],
            ),
        ]
        if is_async:
            hold = ast.Attribute(_load(_CALL), "hold", ast.Load())
            prologue.append(
                ast.If(
                    ast.BoolOp(
                        ast.And(),
                        [
                            ast.Compare(_load(_CALL), [ast.IsNot()], [ast.Constant(None)]),
                            ast.Compare(hold, [ast.IsNot()], [ast.Constant(None)]),
                        ],
                    ),
                    [ast.Expr(ast.Await(copy.deepcopy(hold)))],
                    [],
                )
            )
        # the implicit ``return None`` at the end of the body
        end = ast.copy_location(ast.Return(None), flat[-1] if flat else start)
        tail = _Returns(is_async, is_asyncgen).visit(end)
        flat.extend(tail if isinstance(tail, list) else [tail])
        body = flat
    handler = ast.ExceptHandler(
        _load("Exception"), None, [ast.Expr(_probe("exc")), ast.Raise(None, None)]
    )
    wrapped = ast.Try(body=body, handlers=[handler], orelse=[], finalbody=[])
    # What otrace adds sits on the ``def`` line: a debugger started by the call hook then
    # stops at the body's first line (a new line event), and tracebacks never point at it.
    where = ast.Pass()
    where.lineno = where.end_lineno = node.lineno
    where.col_offset, where.end_col_offset = node.col_offset, node.col_offset + 3
    for added in (*prologue, handler):
        for sub in ast.walk(added):
            if isinstance(sub, (ast.stmt, ast.expr, ast.excepthandler)):
                ast.copy_location(sub, where)
    ast.copy_location(wrapped, start)
    node.body = doc + prologue + [wrapped]
    return node


def _fill(code: CodeType, site: engine.Site, probe: Probe) -> CodeType:
    consts = tuple(site if c == _SITE else probe if c == _PROBE else c for c in code.co_consts)
    return code.replace(co_consts=consts)


class Instrumented:
    """One function instrumented in place; ``base`` is the code it runs untraced."""

    def __init__(self, site: engine.Site, func: FunctionType) -> None:
        self.site = site
        self.func = func
        self.base = func.__code__
        self.probe = Probe(site)
        # Parsed again when code is built: ASTs kept for hundreds of traced functions would
        # be hundreds of thousands of objects for the program's garbage collector to walk.
        self._source = _function_source(func)  # text: not an object graph the gc walks
        self._codes: dict[tuple, CodeType] = {}
        self._check()

    def _check(self) -> None:
        func, base = self.func, self.base
        names = set(base.co_varnames) | set(base.co_names) | set(base.co_freevars)
        if _CALL in names or any(c in (_SITE, _PROBE) for c in base.co_consts):
            raise TraceError("it uses otrace's reserved names")
        module, nested = _module_for(func, _function_node(func, self._source))
        plain = _compile(func, module)
        if not _same(plain, base):
            raise TraceError("its source does not match the running code (edited on disk?)")
        self._nested = nested

    def code_for(self, state: tuple | None) -> CodeType:
        """The code to run while ``state`` (the site's published state) applies."""
        if state is None:
            return self.base
        spec = state[0]
        predicate = spec.predicate
        related = self.site.tracer.params.trace_related
        params = set(self.base.co_varnames[: _nparams(self.base)])
        calls = related or (
            predicate is not None
            and not _never(predicate, params, bool(self.base.co_flags & inspect.CO_VARKEYWORDS))
        )
        tests = inline_tests(predicate, params) if calls and not related else None
        key = (calls, ast.dump(tests) if tests is not None else None)
        code = self._codes.get(key)
        if code is None:
            node = _instrumented_node(
                _function_node(self.func, self._source), self.base, calls, tests
            )
            module, _ = _module_for(self.func, node)
            built = _compile(self.func, module)
            built = _requalify(
                built,
                built.co_qualname,
                self.base.co_qualname,
                (built.co_flags & ~_CO_NESTED) | (self.base.co_flags & _CO_NESTED),
            )
            built = built.replace(co_name=self.base.co_name)
            code = _fill(built, self.site, self.probe)
            if len(self._codes) > 8:
                self._codes.clear()
            self._codes[key] = code
        return code

    def apply(self, state: tuple | None) -> None:
        """Run the code for ``state`` from the next call on (registry lock held)."""
        try:
            code = self.code_for(state)
        except Exception:
            log.exception("instrumenting %s failed; it runs untraced", self.site.name)
            code = self.base
        if self.func.__code__ is not code:
            self.func.__code__ = code

    def restore(self) -> None:
        self.func.__code__ = self.base


def _never(predicate: Predicate, params: set[str], varkw: bool) -> bool:
    """True when ``predicate`` names an argument this function cannot have: no call can
    match (the trace warned when it was made), so only exceptions are traced."""
    parts = predicate.parts if isinstance(predicate, And) else (predicate,)
    return (
        not varkw
        and all(isinstance(p, ArgTest) for p in parts)
        and any(p.arg != "return" and p.arg not in params for p in parts)  # type: ignore[attr-defined]
    )


def _nparams(code: CodeType) -> int:
    n = code.co_argcount + code.co_kwonlyargcount
    n += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return n


# -- the registry of instrumented functions ---------------------------------------------------

_instrumented: dict[int, Instrumented] = {}
# Tests and benchmarks: trace with wrappers only (the fallback back end).
FORCE_WRAPPER = False
_wrapped: dict[int, engine.Site] = {}


def instrument(site: engine.Site) -> Instrumented:
    """Instrument ``site.func`` in place (TraceError saying why it cannot be)."""
    func = site.func
    if not isinstance(func, FunctionType):
        raise TraceError("it is not a Python function")
    first = _instrumented.get(id(func))
    if first is not None:
        # the same function under another name (``get = head = _unimplemented``): its code
        # already reports to the first name's site; this site is an alias of it
        site.alias_of = first.site  # type: ignore[attr-defined]
        return first
    if FORCE_WRAPPER:
        raise TraceError("wrappers forced")
    inst = Instrumented(site, func)
    _instrumented[id(func)] = inst
    site.on_state = inst.apply
    return inst


def release(site: engine.Site) -> None:
    """Put the original code back (registry lock held)."""
    inst = _instrumented.get(id(site.func))
    if inst is not None and inst.site is site:
        del _instrumented[id(site.func)]
        site.on_state = None
        inst.restore()
    _wrapped.pop(id(site.func), None)


def note_wrapped(site: engine.Site) -> None:
    _wrapped[id(site.func)] = site


def instrumented(func: Any) -> Instrumented | None:
    return _instrumented.get(id(func))


def base_code(func: FunctionType) -> CodeType:
    """The code ``func`` runs when untraced (what ``edit`` saves and compares)."""
    inst = _instrumented.get(id(func))
    return inst.base if inst is not None and inst.func is func else func.__code__


def set_code(func: FunctionType, code: CodeType, on_loop: Callable | None = None) -> None:
    """Give ``func`` new code (``edit``), re-instrumenting it if it is traced.

    The signature may change: the traced site's argument map and filters are rebuilt, and
    the instrumented variants are generated again from the new source.
    """
    inst = _instrumented.get(id(func))
    site = inst.site if inst is not None and inst.func is func else _wrapped.get(id(func))
    if site is None:
        func.__code__ = code
        return
    with site.tracer.lock:
        inst = _instrumented.get(id(func))
        site = inst.site if inst is not None and inst.func is func else _wrapped.get(id(func))
        func.__code__ = code
        if site is None:
            return
        site._sig = site._params = None
        site.varargs = site.varkw = None
        if inst is not None and inst.func is func:
            try:
                fresh = Instrumented(site, func)
            except TraceError as exc:
                log.warning("%s: %s; traced again only after untrace/trace", site.name, exc)
                del _instrumented[id(func)]
                site.on_state = None
                return
            _instrumented[id(func)] = fresh
            site.on_state = fresh.apply
        site.refresh(force=True)
