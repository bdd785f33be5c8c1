/* otrace._frames: optional C version of capture._live_records, reading frames directly.

   live_records(frame, codes, cache, context, slow) -> list of raw records

   Recording an exception copies the variables of every frame still running.  Through
   ``frame.f_locals`` that costs, before 3.13, a dict built and cached on each frame (and
   emptied again: see frames.frame_locals), after, a FrameLocalsProxy and its pairs; here a
   function frame's variables are read from the interpreter's own frame into a new dict, and
   nothing is left behind in the frame.

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

/* A copy of a running function frame's variables, as f_locals shows them; NULL without an
   error set when this frame is not one to read here.  ``f->f_frame`` is read again after
   every store: storing allocates, an allocation may run the collector, and a finalizer may
   switch threads, during which a frame of another thread could finish and move into its
   frame object. */
static PyObject *
copy_variables(PyFrameObject *f, PyCodeObject *code)
{
    _PyInterpreterFrame *frame = f->f_frame;
    if (FRAME_CODE(frame) != code)
        return NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if (f->f_extra_locals != NULL) /* (names stored through the proxy: items() shows them) */
        return NULL;
#else
    /* a frame whose cached dict holds something (locals() was called in it, or a debugger
       stored a name): f_locals shows that dict's keys as well */
    PyObject *cached = frame->f_locals;
    if (cached != NULL && !(PyDict_CheckExact(cached) && PyDict_GET_SIZE(cached) == 0))
        return NULL;
    if (frame->stacktop == 0) /* (cleared) */
        return NULL;
#endif
    /* past its prologue: every cell and free variable holds its cell */
    if (_PyInterpreterFrame_LASTI(frame) < code->_co_firsttraceable)
        return NULL;
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    Py_ssize_t n = code->co_nlocalsplus;
    for (Py_ssize_t i = 0; i < n; i++) {
        _PyLocals_Kind kind = _PyLocals_GetKind(code->co_localspluskinds, (int)i);
        if (kind & CO_FAST_HIDDEN) {
            Py_DECREF(out);
            return NULL;
        }
        frame = f->f_frame;
        PyObject *value = frame->localsplus[i];
        if (value != NULL && (kind & (CO_FAST_CELL | CO_FAST_FREE)) && PyCell_Check(value))
            value = PyCell_GET(value);
        if (value == NULL) /* (unbound, or deleted) */
            continue;
        Py_INCREF(value);
        int bad = PyDict_SetItem(out, PyTuple_GET_ITEM(code->co_localsplusnames, i), value);
        Py_DECREF(value);
        if (bad) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* The state of one walk: what consecutive frames share, held strongly (a finalizer run by an
   allocation could replace linecache's entry or the code cache's). */
typedef struct {
    PyCodeObject *code; /* the last frame's code, and what is known of it: */
    PyObject *cinfo;    /* its entry in ``codes`` (NULL: not there) */
    PyObject *entry;    /* linecache's entry for its file (NULL: none, or not wanted) */
    int plain;          /* a function's frame, shown: read here */
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
    w->plain = PyTuple_GET_ITEM(cinfo, 3) == Py_True && PyTuple_GET_ITEM(cinfo, 4) == Py_False;
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
fast_record(Walk *w, PyFrameObject *f)
{
    PyObject *globals = f->f_frame->f_globals;
    if (!PyDict_CheckExact(globals)) /* (a subclass's get: the program's) */
        return NULL;
    if (globals != w->globals) {
        PyObject *name = PyDict_GetItemString(globals, "__name__"); /* (borrowed) */
        name = name != NULL ? Py_NewRef(name) : PyUnicode_New(0, 0); /* (or "") */
        if (name == NULL)
            return NULL;
        Py_XSETREF(w->module, name);
        Py_XSETREF(w->globals, Py_NewRef(globals));
    }
    int lasti = PyFrame_GetLasti(f);
    PyObject *loc = copy_variables(f, w->code);
    if (loc == NULL)
        return NULL;
    PyObject *at = PyLong_FromLong(lasti);
    if (at == NULL) {
        Py_DECREF(loc);
        return NULL;
    }
    PyObject *rec = PyTuple_Pack(5, w->cinfo, at, loc, w->module,
                                 w->entry != NULL ? w->entry : Py_None);
    Py_DECREF(at);
    Py_DECREF(loc);
    return rec;
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
    PyObject *codes = args[1], *cache = args[2], *slow = args[4];
    long context = PyLong_AsLong(args[3]);
    if (context == -1 && PyErr_Occurred())
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Walk w = {0};
    PyFrameObject *f = args[0] == Py_None ? NULL : (PyFrameObject *)Py_NewRef(args[0]);
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        if (code != w.code && walk_code(&w, code, codes, cache, context) < 0) {
            Py_DECREF(code);
            goto fail;
        }
        Py_DECREF(code); /* (w.code holds it) */
        PyObject *rec = w.plain ? fast_record(&w, f) : NULL;
        if (rec == NULL) {
            PyErr_Clear(); /* (MemoryError, say: the Python code may do better, or say so) */
            PyObject *call[2] = {(PyObject *)f, args[3]};
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

static PyMethodDef methods[] = {
    {"live_records", (PyCFunction)(void (*)(void))live_records, METH_FASTCALL,
     "live_records(frame, codes, cache, context, slow) -> capture._live_records' records"},
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
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_mod_multiple_interpreters /* (3.12+) no state: any interpreter, own GIL or not */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "otrace._frames",
    "Optional C version of capture._live_records, reading CPython's frames.",
    0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__frames(void)
{
    return PyModuleDef_Init(&module_def);
}
