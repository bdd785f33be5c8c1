/* otrace._frames: optional C versions of an exception context's capture, reading frames
   directly.

   live_records(frame, codes, cache, context, slow) -> list of raw records
   local_names(code) -> tuple                 the names of a record's values (code_info)
   walk(frame) -> (codes, lastis) or None     a call context's stack walk
   frame_values(frame) -> dict or None        one frame's variables (capture._root)
   exc_line(exc, static, limit) -> str or None  safe.exc_line of the usual exception
   exc_root(...) -> (values, trc) or None     capture_exception's usual case, whole

   Recording an exception copies the variables of every frame still running.  Through
   ``frame.f_locals`` that costs, before 3.13, a dict built and cached on each frame (and
   emptied again: see frames.frame_locals), after, a FrameLocalsProxy and its pairs; here a
   function frame's variables are read from the interpreter's own frame into a tuple of
   values, in the order of the code's names (see copy_variables), and nothing is left behind
   in the frame.

   This reads CPython's internal frame layout (``_PyInterpreterFrame``), which differs
   between 3.11, 3.12 and 3.13 and may in principle change in a bug-fix release: the module
   refuses to load in an interpreter other than the exact release it was compiled against
   (then otrace runs the pure-Python loop, with the same results), and only a function
   frame in the usual state is read here -- anything else (a frame whose cached locals dict
   holds something, 3.13's extra locals, hidden comprehension variables, an unknown code
   object, a module-level or hidden frame) goes to ``slow(frame, context)``, the Python code for one
   frame.  Nothing here runs program code: it looks up names in exact dicts (the globals'
   ``__name__``, the code cache, linecache's) and stores values in a new dict.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef Py_GIL_DISABLED
/* (not built for a free-threaded interpreter: another thread could change a frame while it
   is read) */
#error "otrace._frames needs the GIL"
#endif

#define Py_BUILD_CORE 1
#include <internal/pycore_code.h> /* (3.11: not included by the next) */
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "otrace._frames knows the frames of CPython 3.11 to 3.13"
#endif

#if PY_VERSION_HEX >= 0x030D0000
#define FRAME_CODE(f) _PyFrame_GetCode(f)
#else
#define FRAME_CODE(f) ((f)->f_code)
#endif
#ifndef CO_FAST_HIDDEN /* (3.11: no inlined comprehensions) */
#define CO_FAST_HIDDEN 0
#endif

/* The interpreter frame running now on this thread (the innermost). */
static _PyInterpreterFrame *
current_frame(void)
{
    PyThreadState *ts = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    return ts->current_frame;
#else
    return ts->cframe->current_frame;
#endif
}

/* ``f``'s interpreter frame if it runs on this thread's stack now, else NULL.  Only such a
   frame is read through its ``previous`` links: nothing below the caller of this module can
   return while it runs, whatever a finalizer does meanwhile; another thread's frames can
   (a finalizer may let that thread run). */
static _PyInterpreterFrame *
on_this_stack(PyFrameObject *f)
{
    _PyInterpreterFrame *want = f->f_frame;
    for (_PyInterpreterFrame *at = current_frame(); at != NULL; at = at->previous)
        if (at == want)
            return want;
    return NULL;
}

/* The caller of ``frame``, as PyFrame_GetBack finds it: frames not started yet are skipped */
static _PyInterpreterFrame *
caller_of(_PyInterpreterFrame *frame)
{
    frame = frame->previous;
    while (frame != NULL && _PyFrame_IsIncomplete(frame))
        frame = frame->previous;
    return frame;
}

/* walk(frame) -> (codes, lastis) or None: _speedups.walk without making a frame object for
   each caller (PyFrame_GetBack makes one, and the frame later copies itself into it as it
   returns: most of a call context's stack walk).  None when ``frame`` is not running on
   this thread (then _speedups.walk or Python walks it). */
static PyObject *
walk(PyObject *module, PyObject *arg)
{
    if (arg == Py_None)
        return Py_BuildValue("([][])");
    if (!PyFrame_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "walk() takes a frame or None");
        return NULL;
    }
    _PyInterpreterFrame *frame = on_this_stack((PyFrameObject *)arg);
    if (frame == NULL)
        Py_RETURN_NONE;
    /* counted first, then the lists made at their size (an append each cost more than the
       count); a collection started by making a list runs its finalizers above this frame,
       so the frames below stay as counted */
    Py_ssize_t n = 0;
    for (_PyInterpreterFrame *at = frame; at != NULL; at = caller_of(at))
        n++;
    PyObject *codes = PyList_New(n), *lastis = PyList_New(n);
    if (codes == NULL || lastis == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++, frame = caller_of(frame)) {
        int lasti = _PyInterpreterFrame_LASTI(frame);
        PyObject *at = PyLong_FromLong(lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT));
        if (at == NULL)
            goto fail;
        PyList_SET_ITEM(codes, i, Py_NewRef((PyObject *)FRAME_CODE(frame)));
        PyList_SET_ITEM(lastis, i, at);
    }
    PyObject *pair = PyTuple_Pack(2, codes, lastis);
    Py_DECREF(codes);
    Py_DECREF(lastis);
    return pair;
fail:
    Py_XDECREF(codes);
    Py_XDECREF(lastis);
    return NULL;
}

/* What the module keeps: the marker of an unbound variable, and "__name__". */
typedef struct {
    PyObject *unbound;
    PyObject *name;
    PyObject *tb_lineno;
    /* (exc_root's names: attribute and keys) */
    PyObject *pending, *up, *k_frame, *k_funcname, *k_module, *k_framestack, *k_where,
        *k_argvalues;
} State;

/* A running function frame's variables as f_locals shows them: a new tuple of the values of
   the code's names (co_localsplusnames, in that order), ``unbound`` where f_locals shows no
   name (unbound, deleted, an empty cell).  One tuple instead of a dict: a third of the
   instructions to make and to free (lazy.variables makes the dict when read, with the names
   from the record's code information, see walk_code).  NULL without an error set when this
   frame is not one to read here.  Nothing here allocates after the frame is read (the tuple
   is made first), so the frame cannot change while it is read. */
static PyObject *
copy_variables(PyFrameObject *f, PyCodeObject *code, PyObject *unbound)
{
    Py_ssize_t n = code->co_nlocalsplus;
    PyObject *values = PyTuple_New(n);
    if (values == NULL)
        return NULL;
    _PyInterpreterFrame *frame = f->f_frame;
    if (FRAME_CODE(frame) != code)
        goto no;
#if PY_VERSION_HEX >= 0x030D0000
    if (f->f_extra_locals != NULL) /* (names stored through the proxy: items() shows them) */
        goto no;
#else
    /* a frame whose cached dict holds something (locals() was called in it, or a debugger
       stored a name): f_locals shows that dict's keys as well */
    PyObject *cached = frame->f_locals;
    if (cached != NULL && !(PyDict_CheckExact(cached) && PyDict_GET_SIZE(cached) == 0))
        goto no;
    if (frame->stacktop == 0 && n > 0) /* (cleared; a frame of no variables: nothing to read) */
        goto no;
#endif
    /* past its prologue: every cell and free variable holds its cell */
    if (_PyInterpreterFrame_LASTI(frame) < code->_co_firsttraceable)
        goto no;
    for (Py_ssize_t i = 0; i < n; i++) {
        _PyLocals_Kind kind = _PyLocals_GetKind(code->co_localspluskinds, (int)i);
        if (kind & CO_FAST_HIDDEN)
            goto no;
        PyObject *value = frame->localsplus[i];
        if (value != NULL && (kind & (CO_FAST_CELL | CO_FAST_FREE)) && PyCell_Check(value))
            value = PyCell_GET(value);
        PyTuple_SET_ITEM(values, i, Py_NewRef(value != NULL ? value : unbound));
    }
    return values;
no:
    /* (the items not yet set are NULL: tuple's dealloc skips them) */
    Py_DECREF(values);
    return NULL;
}

/* The state of one walk: what consecutive frames share, held strongly (a finalizer run by an
   allocation could replace linecache's entry or the code cache's). */
typedef struct {
    PyCodeObject *code; /* the last frame's code, and what is known of it: */
    PyObject *cinfo;    /* its entry in ``codes`` (NULL: not there) */
    PyObject *entry;    /* linecache's entry for its file (NULL: none, or not wanted) */
    int plain;          /* read here: 1 a function's frame, 2 maybe a module's, 0 not */
    PyObject *globals;  /* the last frame's globals, and their module's name */
    PyObject *module;
} Walk;

static void
walk_clear(Walk *w)
{
    Py_CLEAR(w->code);
    Py_CLEAR(w->cinfo);
    Py_CLEAR(w->entry);
    Py_CLEAR(w->globals);
    Py_CLEAR(w->module);
}

/* Look up what is known of ``code`` (a new code: the frame before ran another). */
static int
walk_code(Walk *w, PyCodeObject *code, PyObject *codes, PyObject *cache, long context)
{
    Py_CLEAR(w->cinfo);
    Py_CLEAR(w->entry);
    Py_XSETREF(w->code, (PyCodeObject *)Py_NewRef(code));
    w->plain = 0;
    PyObject *key = PyLong_FromVoidPtr(code);
    if (key == NULL)
        return -1;
    PyObject *cinfo = PyDict_GetItemWithError(codes, key); /* (borrowed) */
    Py_DECREF(key);
    if (cinfo == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_CheckExact(cinfo) || PyTuple_GET_SIZE(cinfo) < 5 ||
        PyTuple_GET_ITEM(cinfo, 0) != (PyObject *)code)
        return 0;
    w->cinfo = Py_NewRef(cinfo);
    if (PyTuple_GET_ITEM(cinfo, 4) == Py_False) /* (shown) */
        w->plain = PyTuple_GET_ITEM(cinfo, 3) == Py_True ? 1 : 2;
    /* a function's values are read with the names its code information gives (see
       frames.code_info): only when those are the code's own */
    if (w->plain == 1 && (PyTuple_GET_SIZE(cinfo) < 7 ||
                          PyTuple_GET_ITEM(cinfo, 6) != code->co_localsplusnames))
        w->plain = 0;
    if (context > 0) {
        PyObject *filename = PyTuple_GET_ITEM(cinfo, 1);
        if (!PyUnicode_CheckExact(filename)) /* (a str subclass's __eq__: not here) */
            w->plain = 0;
        else {
            PyObject *entry = PyDict_GetItemWithError(cache, filename);
            if (entry == NULL && PyErr_Occurred())
                return -1;
            w->entry = Py_XNewRef(entry);
        }
    }
    return 0;
}

/* The raw record of a plain frame (capture.Raw), or NULL without an error: ask ``slow``. */
static PyObject *
fast_record(Walk *w, PyFrameObject *f, State *st)
{
    PyObject *globals = f->f_frame->f_globals;
    if (!PyDict_CheckExact(globals)) /* (a subclass's get: the program's) */
        return NULL;
    PyObject *loc;
    if (w->plain == 2) { /* module level: its variables are its module's (capture._variables) */
        if (f->f_frame->f_locals != globals)
            return NULL;
        loc = Py_NewRef(Py_None);
    }
    else if ((loc = copy_variables(f, w->code, st->unbound)) == NULL)
        return NULL;
    if (globals != w->globals) {
        PyObject *name = PyDict_GetItemWithError(globals, st->name); /* (borrowed) */
        name = name != NULL ? Py_NewRef(name) : PyErr_Occurred() ? NULL : PyUnicode_New(0, 0);
        if (name == NULL) {
            Py_DECREF(loc);
            return NULL;
        }
        Py_XSETREF(w->module, name);
        Py_XSETREF(w->globals, Py_NewRef(globals));
    }
    PyObject *at = PyLong_FromLong(PyFrame_GetLasti(f));
    PyObject *rec = at == NULL ? NULL : PyTuple_New(5);
    if (rec == NULL) {
        Py_XDECREF(at);
        Py_DECREF(loc);
        return NULL;
    }
    /* (filled in place, ``at`` and ``loc`` handed over: PyTuple_Pack's varargs cost more) */
    PyTuple_SET_ITEM(rec, 0, Py_NewRef(w->cinfo));
    PyTuple_SET_ITEM(rec, 1, at);
    PyTuple_SET_ITEM(rec, 2, loc);
    PyTuple_SET_ITEM(rec, 3, Py_NewRef(w->module));
    PyTuple_SET_ITEM(rec, 4, Py_NewRef(w->entry != NULL ? w->entry : Py_None));
    return rec;
}

/* The raw records of ``first`` and its callers, innermost first (see live_records). */
static PyObject *
records(State *st, PyObject *first, PyObject *codes, PyObject *cache, PyObject *context_obj,
        long context, PyObject *slow)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Walk w = {0};
    PyFrameObject *f = first == Py_None ? NULL : (PyFrameObject *)Py_NewRef(first);
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        if (code != w.code && walk_code(&w, code, codes, cache, context) < 0) {
            Py_DECREF(code);
            goto fail;
        }
        Py_DECREF(code); /* (w.code holds it) */
        PyObject *rec = w.plain ? fast_record(&w, f, st) : NULL;
        if (rec == NULL) {
            PyErr_Clear(); /* (MemoryError, say: the Python code may do better, or say so) */
            PyObject *call[2] = {(PyObject *)f, context_obj};
            rec = PyObject_Vectorcall(slow, call, 2, NULL);
            if (rec == NULL)
                goto fail;
        }
        int bad = rec != Py_None && PyList_Append(out, rec) < 0;
        Py_DECREF(rec);
        if (bad)
            goto fail;
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
        if (f == NULL && PyErr_Occurred())
            goto fail;
    }
    walk_clear(&w);
    return out;
fail:
    Py_XDECREF(f);
    walk_clear(&w);
    Py_DECREF(out);
    return NULL;
}

/* live_records(frame, codes, cache, context, slow): capture._live_records without deep_copy
   -- the raw records of ``frame`` and its callers, innermost first; ``slow(frame, context)`` gives
   the record of a frame not read here, or None to leave it out. */
static PyObject *
live_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || (args[0] != Py_None && !PyFrame_Check(args[0])) ||
        !PyDict_CheckExact(args[1]) || !PyDict_CheckExact(args[2]) ||
        !PyLong_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "live_records() takes a frame or None, two dicts, an int, and a callable");
        return NULL;
    }
    long context = PyLong_AsLong(args[3]);
    if (context == -1 && PyErr_Occurred())
        return NULL;
    return records(PyModule_GetState(module), args[0], args[1], args[2], args[3], context,
                   args[4]);
}

static PyObject *values_dict(State *st, PyFrameObject *f);

/* local_names(code) -> tuple: the names of the values copy_variables reads from a frame of
   ``code``, in that order (frames.code_info keeps them with the code's other facts). */
static PyObject *
local_names(PyObject *module, PyObject *arg)
{
    if (!PyCode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "local_names() takes a code object");
        return NULL;
    }
    return Py_NewRef(((PyCodeObject *)arg)->co_localsplusnames);
}

/* frame_values(frame) -> dict or None: frames.frame_locals(frame) for a function frame read
   here (see copy_variables) -- a new dict of its variables, made without filling the frame's
   cached dict (before 3.13) or a FrameLocalsProxy (after); None for any other frame (then
   Python reads it).  For the root of an exception context: the frame that raised, still
   running or finished. */
static PyObject *
frame_values(PyObject *module, PyObject *arg)
{
    if (!PyFrame_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "frame_values() takes a frame");
        return NULL;
    }
    PyObject *out = values_dict(PyModule_GetState(module), (PyFrameObject *)arg);
    if (out == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return out;
}

/* A frame's variables as a new dict (frame_values), NULL without an error: not read here. */
static PyObject *
values_dict(State *st, PyFrameObject *f)
{
    PyCodeObject *code = PyFrame_GetCode(f);
    PyObject *values = NULL;
    if (code->co_flags & CO_OPTIMIZED) /* (else any mapping: Python's namespace_copy) */
        values = copy_variables(f, code, st->unbound);
    if (values == NULL) {
        Py_DECREF(code);
        return NULL;
    }
    PyObject *names = code->co_localsplusnames; /* (the code, held, holds them) */
    Py_ssize_t n = PyTuple_GET_SIZE(values);
    PyObject *out = _PyDict_NewPresized(n);
    /* (the names are the code's own exact strs: storing them runs no program code) */
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *value = PyTuple_GET_ITEM(values, i);
        if (value != st->unbound && PyDict_SetItem(out, PyTuple_GET_ITEM(names, i), value) < 0)
            Py_CLEAR(out);
    }
    Py_DECREF(values);
    Py_DECREF(code);
    return out;
}

/* Whether the frame of traceback entry ``at`` is shown (1), hidden (0), or to be asked of
   Python (-1: its code not known yet, or its __tracebackhide__ to be read), -2 on an error;
   ``*cinfo`` its code's entry in ``codes`` (borrowed). */
static int
tb_shown(PyObject *codes, PyTracebackObject *at, PyObject **cinfo)
{
    if (at->tb_frame == NULL)
        return -1;
    PyCodeObject *code = PyFrame_GetCode(at->tb_frame);
    PyObject *key = PyLong_FromVoidPtr(code);
    Py_DECREF(code); /* (the frame holds it; only compared below) */
    if (key == NULL)
        return -2;
    PyObject *known = PyDict_GetItemWithError(codes, key); /* (borrowed) */
    Py_DECREF(key);
    if (known == NULL)
        return PyErr_Occurred() ? -2 : -1;
    if (!PyTuple_CheckExact(known) || PyTuple_GET_SIZE(known) < 6 ||
        PyTuple_GET_ITEM(known, 0) != (PyObject *)code)
        return -1;
    *cinfo = known;
    PyObject *hidden = PyTuple_GET_ITEM(known, 4);
    return hidden == Py_False ? 1 : hidden == Py_True ? 0 : -1;
}

/* Append the records of the traceback's frames shown above the root (``above``: their
entries, outermost first), which have unwound -- all but the first entry's, which caught:
``record(frame, line, True, False, finished, context)``, capture._record. */
static int
finished_records(State *st, PyObject *raws, PyTracebackObject *tb, PyObject *above,
                 PyObject *context, PyObject *record)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(above); i++) {
        PyTracebackObject *entry = (PyTracebackObject *)PyList_GET_ITEM(above, i);
        PyObject *line = PyObject_GetAttr((PyObject *)entry, st->tb_lineno);
        if (line == NULL)
            return -1;
        PyObject *frame = Py_NewRef(entry->tb_frame);
        PyObject *call[6] = {frame, line, Py_True, Py_False,
                             entry->tb_frame != tb->tb_frame ? Py_True : Py_False, context};
        PyObject *rec = PyObject_Vectorcall(record, call, 6, NULL);
        Py_DECREF(frame);
        Py_DECREF(line);
        if (rec == NULL)
            return -1;
        int bad = PyList_Append(raws, rec) < 0;
        Py_DECREF(rec);
        if (bad)
            return -1;
    }
    return 0;
}

/* lazy.lazy_root, here: the root's ``__up``, a LazyFrame of ``(raws, context)``, stored in
   ``values``, and its LazyTrc -- made as ``dict.__new__(cls)`` and ``cls(**keywords)`` make
   them (these classes are otrace's own: neither overrides what is called here).  Returns
   (values, trc). */
static PyObject *
lazy_root(State *st, PyTypeObject *frame_cls, PyTypeObject *trc_cls, PyObject *raws,
          PyObject *context, PyObject *values, PyObject *info, PyObject *name, PyObject *mod,
          PyObject *argvalues)
{
    PyObject *node = NULL, *pending = NULL, *trc = NULL, *out = NULL;
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL)
        return NULL;
    node = PyDict_Type.tp_new(frame_cls, empty, NULL);
    pending = node != NULL ? PyTuple_Pack(2, raws, context) : NULL;
    if (node == NULL || pending == NULL || PyObject_SetAttr(node, st->pending, pending) < 0 ||
        PyDict_SetItem(values, st->up, node) < 0)
        goto done;
    trc = PyDict_Type.tp_new(trc_cls, empty, NULL);
    /* (LazyTrc's keys in lazy_root's order) */
    if (trc == NULL || PyDict_SetItem(trc, st->k_frame, info) < 0 ||
        PyDict_SetItem(trc, st->k_funcname, name) < 0 ||
        PyDict_SetItem(trc, st->k_module, mod) < 0 ||
        PyDict_SetItem(trc, st->k_framestack, Py_None) < 0 ||
        PyDict_SetItem(trc, st->k_where, Py_None) < 0 ||
        PyDict_SetItem(trc, st->k_argvalues, argvalues) < 0 ||
        PyObject_SetAttr(trc, st->pending, node) < 0)
        goto done;
    out = PyTuple_Pack(2, values, trc);
done:
    Py_DECREF(empty);
    Py_XDECREF(node);
    Py_XDECREF(pending);
    Py_XDECREF(trc);
    return out;
}

/* exc_root(tb, caller, codes, cache, context, slow, LazyFrame, LazyTrc, record) -> (values,
   trc) or None: capture_exception's frames in one call, for the usual traceback -- its
   frames' codes known, shown or hidden (not asking __tracebackhide__), the innermost shown
   (the root) a function's, with plain globals and its file's source in linecache.  The
   records of ``caller`` and its callers outermost first (live_records, reversed), then
   those of the traceback's frames shown above the root (``record``: capture._record), go
   to the root's LazyFrame; the root gives the context's variables (frame_values), and its
   LazyTrc's frame line (filename, line, name, source lines), module name and argument
   names.  None for anything else (Python does it all, the same way). */
static PyObject *
exc_root(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9 || (args[1] != Py_None && !PyFrame_Check(args[1])) ||
        !PyDict_CheckExact(args[2]) || !PyDict_CheckExact(args[3]) ||
        !PyLong_CheckExact(args[4]) || !PyType_Check(args[6]) || !PyType_Check(args[7]) ||
        !PyType_IsSubtype((PyTypeObject *)args[6], &PyDict_Type) ||
        !PyType_IsSubtype((PyTypeObject *)args[7], &PyDict_Type)) {
        PyErr_SetString(PyExc_TypeError,
                        "exc_root() takes a traceback, a frame or None, two dicts, an int, "
                        "a callable, two dict classes and a callable");
        return NULL;
    }
    State *st = PyModule_GetState(module);
    PyObject *codes = args[2], *cache = args[3];
    long context = PyLong_AsLong(args[4]);
    if (context == -1 && PyErr_Occurred())
        return NULL;
    if (!PyTraceBack_Check(args[0]) || context <= 0)
        Py_RETURN_NONE;
    /* the innermost frame shown is the root; those shown above it have unwound */
    /* (every entry held while it is looked at, and the root so far: the list's allocation
       could run a finalizer, which could cut the chain or clear the code cache) */
    PyTracebackObject *tb = (PyTracebackObject *)args[0], *root_tb = NULL;
    PyObject *cinfo = NULL, *above = NULL, *root = NULL, *at = Py_NewRef(tb);
    int shown = 0;
    while (at != NULL) {
        PyObject *known;
        if ((shown = tb_shown(codes, (PyTracebackObject *)at, &known)) < 0)
            goto walked;
        if (shown) {
            if (root != NULL && ((above == NULL && (above = PyList_New(0)) == NULL) ||
                                 PyList_Append(above, root) < 0)) {
                shown = -2;
                goto walked;
            }
            Py_XSETREF(root, Py_NewRef(at));
        }
        Py_XSETREF(at, Py_XNewRef((PyObject *)((PyTracebackObject *)at)->tb_next));
    }
    /* the root's code looked up again, now that nothing allocates until it is held */
    shown = root == NULL ? -1 : tb_shown(codes, (PyTracebackObject *)root, &cinfo);
walked:
    Py_XDECREF(at);
    if (shown != 1) {
        Py_XDECREF(root);
        Py_XDECREF(above);
        return shown == -2 ? NULL : Py_NewRef(Py_None);
    }
    root_tb = (PyTracebackObject *)root; /* (held: released at the end) */
    PyFrameObject *f = root_tb->tb_frame;
    PyObject *globals = f->f_frame->f_globals;
    PyObject *args_of = PyTuple_GET_ITEM(cinfo, 5);
    if (PyTuple_GET_ITEM(cinfo, 3) != Py_True ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(cinfo, 1)) || !PyDict_CheckExact(globals) ||
        !PyTuple_CheckExact(args_of) || PyTuple_GET_SIZE(args_of) != 3 ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(args_of, 0))) {
        Py_DECREF(root);
        Py_XDECREF(above);
        Py_RETURN_NONE;
    }
    Py_INCREF(cinfo); /* (an allocation below may run a finalizer that clears the cache) */
    PyObject *filename = PyTuple_GET_ITEM(cinfo, 1), *name = PyTuple_GET_ITEM(cinfo, 2);
    PyObject *entry = NULL, *values = NULL, *lineno = NULL, *lines = NULL, *mod = NULL;
    PyObject *raws = NULL, *out = NULL;
    entry = Py_XNewRef(PyDict_GetItemWithError(cache, filename));
    /* a full linecache entry (size, mtime, lines, fullname), else Python's source_slice */
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4 ||
        !PyList_CheckExact(PyTuple_GET_ITEM(entry, 2)))
        goto decline;
    if ((values = values_dict(st, f)) == NULL)
        goto decline;
    lineno = PyObject_GetAttr((PyObject *)root_tb, st->tb_lineno); /* (the traceback's own) */
    if (lineno == NULL)
        goto fail;
    if (!PyLong_CheckExact(lineno)) /* (None: no line) */
        goto decline;
    long line = PyLong_AsLong(lineno);
    if (line == -1 && PyErr_Occurred())
        goto fail;
    long start = line - context / 2; /* (context > 0: C's division is Python's floor) */
    if (start < 1)
        start = 1;
    lines = PyList_GetSlice(PyTuple_GET_ITEM(entry, 2), start - 1, start - 1 + context);
    if (lines == NULL)
        goto fail;
    if (PyList_GET_SIZE(lines) == 0)
        Py_SETREF(lines, Py_NewRef(Py_None));
    mod = PyDict_GetItemWithError(globals, st->name);
    mod = mod != NULL ? Py_NewRef(mod) : PyErr_Occurred() ? NULL : PyUnicode_New(0, 0);
    if (mod == NULL)
        goto fail;
    raws = records(st, args[1], codes, cache, args[4], context, args[5]);
    if (raws == NULL || PyList_Reverse(raws) < 0 ||
        (above != NULL && finished_records(st, raws, tb, above, args[4], args[8]) < 0))
        goto fail;
    if (PyList_GET_SIZE(raws) == 0) /* (no caller shown: Python's way) */
        goto decline;
    PyObject *names = PySequence_List(PyTuple_GET_ITEM(args_of, 0));
    PyObject *argvalues = names == NULL ? NULL
                                        : PyTuple_Pack(3, names, PyTuple_GET_ITEM(args_of, 1),
                                                       PyTuple_GET_ITEM(args_of, 2));
    Py_XDECREF(names);
    PyObject *info = argvalues == NULL ? NULL : PyTuple_Pack(4, filename, lineno, name, lines);
    if (info != NULL)
        out = lazy_root(st, (PyTypeObject *)args[6], (PyTypeObject *)args[7], raws, args[4],
                        values, info, name, mod, argvalues);
    Py_XDECREF(argvalues);
    Py_XDECREF(info);
    goto done;
decline:
    if (!PyErr_Occurred())
        out = Py_NewRef(Py_None);
    goto done;
fail:
done:
    Py_XDECREF(root_tb);
    Py_XDECREF(above);
    Py_DECREF(cinfo);
    Py_XDECREF(entry);
    Py_XDECREF(values);
    Py_XDECREF(lineno);
    Py_XDECREF(lines);
    Py_XDECREF(mod);
    Py_XDECREF(raws);
    return out;
}

/* ``name + ": " + text`` of two exact strs, as PyUnicode_FromFormat("%U: %U") makes it, at
   a fraction of its instructions (no format to parse, no writer growing a buffer). */
static PyObject *
name_and_text(PyObject *name, PyObject *text)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(name), t = PyUnicode_GET_LENGTH(text);
    Py_UCS4 most = PyUnicode_MAX_CHAR_VALUE(name), of_text = PyUnicode_MAX_CHAR_VALUE(text);
    PyObject *out = PyUnicode_New(n + 2 + t, most > of_text ? most : of_text);
    if (out == NULL)
        return NULL;
    int kind = PyUnicode_KIND(out);
    char *data = PyUnicode_DATA(out);
    PyUnicode_WRITE(kind, data, n, ':');
    PyUnicode_WRITE(kind, data, n + 1, ' ');
    /* (the usual: all three of one width, copied as bytes; else converted) */
    if (PyUnicode_KIND(name) == kind)
        memcpy(data, PyUnicode_DATA(name), (size_t)n * kind);
    else if (PyUnicode_CopyCharacters(out, 0, name, 0, n) < 0)
        goto fail;
    if (PyUnicode_KIND(text) == kind)
        memcpy(data + (n + 2) * kind, PyUnicode_DATA(text), (size_t)t * kind);
    else if (PyUnicode_CopyCharacters(out, n + 2, text, 0, t) < 0)
        goto fail;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* exc_line(exc, static, limit) -> str or None: safe.exc_line's usual case in one call -- an
   exception of one of the interpreter's static classes (``static``: safe._STATIC_EXC, {id:
   name}) whose arguments are all of the plain types, whose own str() is then the
   interpreter's formatting of plain values.  None for anything else, or if str() fails (then
   Python does it all, and says so its way). */
static PyObject *
exc_line(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_CheckExact(args[1]) || !PyLong_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "exc_line() takes an exception, a dict and an int");
        return NULL;
    }
    PyObject *exc = args[0];
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    PyTypeObject *cls = Py_TYPE(exc);
    if (limit < 0 || !PyExceptionInstance_Check(exc) || (cls->tp_flags & Py_TPFLAGS_HEAPTYPE))
        Py_RETURN_NONE;
    PyObject *exc_args = ((PyBaseExceptionObject *)exc)->args;
    if (exc_args == NULL || !PyTuple_CheckExact(exc_args))
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(exc_args); i++) {
        PyTypeObject *t = Py_TYPE(PyTuple_GET_ITEM(exc_args, i));
        if (t != &PyUnicode_Type && t != &PyLong_Type && t != &PyFloat_Type &&
            t != &PyBool_Type && t != Py_TYPE(Py_None) && t != &PyBytes_Type)
            Py_RETURN_NONE;
    }
    PyObject *key = PyLong_FromVoidPtr(cls);
    if (key == NULL)
        return NULL;
    PyObject *name = PyDict_GetItemWithError(args[1], key); /* (borrowed) */
    Py_DECREF(key);
    if (name == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (!PyUnicode_CheckExact(name))
        Py_RETURN_NONE;
    Py_INCREF(name); /* (the dict could lose it while str() runs) */
    PyObject *text = PyObject_Str(exc);
    if (text == NULL || !PyUnicode_CheckExact(text)) {
        PyErr_Clear();
        Py_XDECREF(text);
        Py_DECREF(name);
        Py_RETURN_NONE;
    }
    PyObject *line;
    if (PyUnicode_GET_LENGTH(text) == 0)
        line = Py_NewRef(name);
    else
        line = name_and_text(name, text);
    Py_DECREF(text);
    Py_DECREF(name);
    if (line == NULL || PyUnicode_GET_LENGTH(line) <= limit)
        return line;
    PyObject *cut = PyUnicode_Substring(line, 0, limit);
    Py_DECREF(line);
    if (cut == NULL)
        return NULL;
    PyObject *dots = PyUnicode_FromString("...");
    PyObject *out = dots == NULL ? NULL : PyUnicode_Concat(cut, dots);
    Py_XDECREF(dots);
    Py_DECREF(cut);
    return out;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_O,
     "walk(frame) -> (codes, lastis) from frame outwards, or None: not on this thread"},
    {"live_records", (PyCFunction)(void (*)(void))live_records, METH_FASTCALL,
     "live_records(frame, codes, cache, context, slow) -> capture._live_records' records"},
    {"exc_root", (PyCFunction)(void (*)(void))exc_root, METH_FASTCALL,
     "exc_root(tb, caller, codes, cache, context, slow, LazyFrame, LazyTrc, record) -> "
     "capture_exception's usual (values, trc), or None"},
    {"local_names", local_names, METH_O,
     "local_names(code) -> the names of a frame's values in live_records' records"},
    {"frame_values", frame_values, METH_O,
     "frame_values(frame) -> frames.frame_locals(frame) of a function frame, or None"},
    {"exc_line", (PyCFunction)(void (*)(void))exc_line, METH_FASTCALL,
     "exc_line(exc, static, limit) -> safe.exc_line's usual case, or None"},
    {NULL, NULL, 0, NULL},
};

static int
exec_module(PyObject *module)
{
    /* compiled against this exact release, or not at all (see the top) */
    if ((Py_Version & 0xFFFFFF00) != (PY_VERSION_HEX & 0xFFFFFF00)) {
        PyErr_Format(PyExc_ImportError,
                     "otrace._frames was built for CPython %s, this is another release",
                     PY_VERSION);
        return -1;
    }
    State *st = PyModule_GetState(module);
    st->unbound = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    st->name = PyUnicode_InternFromString("__name__");
    st->tb_lineno = PyUnicode_InternFromString("tb_lineno");
    st->pending = PyUnicode_InternFromString("_pending");
    st->up = PyUnicode_InternFromString("__up");
    st->k_frame = PyUnicode_InternFromString("frame");
    st->k_funcname = PyUnicode_InternFromString("funcname");
    st->k_module = PyUnicode_InternFromString("module");
    st->k_framestack = PyUnicode_InternFromString("framestack");
    st->k_where = PyUnicode_InternFromString("where");
    st->k_argvalues = PyUnicode_InternFromString("argvalues");
    if (st->unbound == NULL || st->name == NULL || st->tb_lineno == NULL ||
        st->pending == NULL || st->up == NULL || st->k_frame == NULL || st->k_funcname == NULL ||
        st->k_module == NULL || st->k_framestack == NULL || st->k_where == NULL ||
        st->k_argvalues == NULL)
        return -1;
    return PyModule_AddObjectRef(module, "UNBOUND", st->unbound);
}

static int
traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = PyModule_GetState(module);
    Py_VISIT(st->unbound);
    return 0;
}

static int
clear(PyObject *module)
{
    State *st = PyModule_GetState(module);
    Py_CLEAR(st->unbound);
    Py_CLEAR(st->name);
    Py_CLEAR(st->tb_lineno);
    Py_CLEAR(st->pending);
    Py_CLEAR(st->up);
    Py_CLEAR(st->k_frame);
    Py_CLEAR(st->k_funcname);
    Py_CLEAR(st->k_module);
    Py_CLEAR(st->k_framestack);
    Py_CLEAR(st->k_where);
    Py_CLEAR(st->k_argvalues);
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_mod_multiple_interpreters /* (3.12+) module state only: any interpreter */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "otrace._frames",
    "Optional C version of capture._live_records, reading CPython's frames.",
    sizeof(State), methods, slots, traverse, clear, NULL,
};

PyMODINIT_FUNC
PyInit__frames(void)
{
    return PyModuleDef_Init(&module_def);
}
