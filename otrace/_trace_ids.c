/* otrace._trace_ids: optional C versions of what every context costs at its making --
   record.new_timestamp (the trace id's clock), TraceContext(...) and the store's filing.

   new_timestamp(now=None) -> str       record.new_timestamp's timestamp
   state() -> (base, fraction)          the last one issued, in two parts (tests)
   set_state(base, fraction)            put it back (tests that issue ids of other times)
   setup(...)                           what context() and file() need from record.py, once
   context(kind, name, label, values, trc) -> TraceContext or None
                                        a new context as TraceContext(...) makes it
   file(recent, all, order, ctx, limit, saved, shelf) -> None, the evicted, True or False
                                        store.ContextStore._file: a new context filed

   The clock: the Python version costs about ten thousand instructions, most of them
   formatting and the compare-and-swap that keeps it free of locks.  Here the same steps,
   with the same results: the last timestamp issued is kept in module state as two str
   objects; the next is worked out from them, then installed only if they are still the
   ones read.  Under the GIL nothing in issue() lets other code run today -- it allocates
   only str objects, which never start a collection, and never releases the GIL -- so that
   test always holds; it stays so that a change letting code run there (a finalizer that
   asks for a timestamp) could make this one work it out again, never issue one twice or
   wait.

   context() and file() do the usual case of their Python counterparts and decline the
   rest (None, False), which Python then does: no second set of rules for the rare cases.
   TraceContext's slots are read and written in place, at the offsets its member
   descriptors give (checked at setup()).  No program code runs here: exact dicts, sets
   and strs, otrace's own classes (identity checks), Thread's own ``name``.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* (T_OBJECT_EX: how a __slots__ member is stored) */
#include <string.h>
#include <time.h>

typedef struct {
    PyObject *last_base;     /* the last timestamp's whole second, "YYMMDD-HH-MM-SS" */
    PyObject *last_frac;     /* its fraction digits ("" for none) */
    long long cached_second; /* the whole second last formatted, and its text */
    PyObject *cached_base;
    /* context(): from setup(), all NULL until then */
    PyTypeObject *cls, *frame_cls; /* TraceContext, FrameContext */
    PyObject *kinds, *names, *labels, *active, *name_prop, *py_thread_name, *trc_types;
    Py_ssize_t offsets[7]; /* TraceContext's slots, in SLOTS' order */
    PyObject *s_trc, *s_up, *s_down, *s_id, *s_context, *s_thread, *s_related, *s_name;
    PyObject *s_tname;
    PyObject *empty_tuple, *s_popitem, *last_kw;
} State;

static const char *SLOTS[7] = {"id", "kind", "name", "ctxid", "timestamp", "created", "live"};
enum { S_ID, S_KIND, S_NAME, S_CTXID, S_TIMESTAMP, S_CREATED, S_LIVE };

static int
exec_module(PyObject *module)
{
    State *st = PyModule_GetState(module);
    st->last_base = PyUnicode_New(0, 0);
    st->last_frac = PyUnicode_New(0, 0);
    st->cached_second = -1;
    st->cached_base = PyUnicode_New(0, 0);
    return st->last_base && st->last_frac && st->cached_base ? 0 : -1;
}

/* Drop what setup() gave (context() then declines until setup() again) */
static void
clear_context(State *st)
{
    Py_CLEAR(st->cls);
    Py_CLEAR(st->frame_cls);
    Py_CLEAR(st->kinds);
    Py_CLEAR(st->names);
    Py_CLEAR(st->labels);
    Py_CLEAR(st->active);
    Py_CLEAR(st->name_prop);
    Py_CLEAR(st->py_thread_name);
    Py_CLEAR(st->trc_types);
    Py_CLEAR(st->s_trc);
    Py_CLEAR(st->s_up);
    Py_CLEAR(st->s_down);
    Py_CLEAR(st->s_id);
    Py_CLEAR(st->s_context);
    Py_CLEAR(st->s_thread);
    Py_CLEAR(st->s_related);
    Py_CLEAR(st->s_name);
    Py_CLEAR(st->s_tname);
    Py_CLEAR(st->empty_tuple);
    Py_CLEAR(st->s_popitem);
    Py_CLEAR(st->last_kw);
}

static int
clear(PyObject *module)
{
    State *st = PyModule_GetState(module);
    Py_CLEAR(st->last_base);
    Py_CLEAR(st->last_frac);
    Py_CLEAR(st->cached_base);
    clear_context(st);
    return 0;
}

static int
traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = PyModule_GetState(module);
    Py_VISIT(st->cls);
    Py_VISIT(st->frame_cls);
    Py_VISIT(st->kinds);
    Py_VISIT(st->names);
    Py_VISIT(st->labels);
    Py_VISIT(st->active);
    Py_VISIT(st->name_prop);
    Py_VISIT(st->py_thread_name);
    Py_VISIT(st->trc_types);
    return 0;
}

/* a + sep + b (sep 0: none), or a + sep + b + sep + c when c is given, made in one piece
   (PyUnicode_FromFormat and PyUnicode_Join cost several times more per id) */
static PyObject *
joined(PyObject *a, Py_UCS4 sep, PyObject *b, PyObject *c)
{
    PyObject *parts[3] = {a, b, c};
    int n = c != NULL ? 3 : 2;
    Py_ssize_t length = sep ? n - 1 : 0;
    Py_UCS4 maxchar = sep > 127 ? sep : 127;
    for (int i = 0; i < n; i++) {
        length += PyUnicode_GET_LENGTH(parts[i]);
        if (PyUnicode_MAX_CHAR_VALUE(parts[i]) > maxchar)
            maxchar = PyUnicode_MAX_CHAR_VALUE(parts[i]);
    }
    PyObject *out = PyUnicode_New(length, maxchar);
    if (out == NULL)
        return NULL;
    Py_ssize_t at = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && sep)
            PyUnicode_WRITE(PyUnicode_KIND(out), PyUnicode_DATA(out), at++, sep);
        Py_ssize_t len = PyUnicode_GET_LENGTH(parts[i]);
        if (PyUnicode_CopyCharacters(out, at, parts[i], 0, len) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        at += len;
    }
    return out;
}

/* The text of ``s``'s first ``n`` characters, or all of it plus "1" (n < 0) */
static PyObject *
frac_of(PyObject *s, Py_ssize_t n)
{
    if (n >= 0)
        return PyUnicode_Substring(s, 0, n);
    PyObject *one = PyUnicode_FromOrdinal('1');
    PyObject *out = one != NULL ? joined(s, 0, one, NULL) : NULL;
    Py_XDECREF(one);
    return out;
}

static PyObject *issue(State *st, double now);

static int
now_of(double *now)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    return 0;
}

static PyObject *
new_timestamp(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    State *st = PyModule_GetState(module);
    double now;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "new_timestamp() takes at most one argument");
        return NULL;
    }
    if (nargs == 0 || args[0] == Py_None) {
        if (now_of(&now) < 0)
            return NULL;
    }
    else if (PyFloat_CheckExact(args[0]))
        now = PyFloat_AS_DOUBLE(args[0]);
    else if (PyLong_CheckExact(args[0])) {
        now = PyLong_AsDouble(args[0]);
        if (now == -1.0 && PyErr_Occurred())
            return NULL;
    }
    else {
        PyErr_SetString(PyExc_TypeError, "new_timestamp() takes a float, an int or None");
        return NULL;
    }
    return issue(st, now);
}

/* The timestamp for time ``now`` (see the module docstring) */
static PyObject *
issue(State *st, double now)
{
    long long second = (long long)now; /* (int(now): ids are for times after 1970) */
    PyObject *base;
    if (st->cached_second == second)
        base = Py_NewRef(st->cached_base);
    else {
        time_t t = (time_t)second;
        struct tm tm;
        char text[64];
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(text, sizeof text, "%y%m%d-%H-%M-%S", &tm) == 0) {
            PyErr_SetString(PyExc_OverflowError, "timestamp out of range");
            return NULL;
        }
        if ((base = PyUnicode_FromString(text)) == NULL)
            return NULL;
        Py_SETREF(st->cached_base, Py_NewRef(base));
        st->cached_second = second;
    }
    char micro[8]; /* the microseconds, six digits (snprintf costs more than the rest) */
    long us = (long)((now - (double)second) * 1000000.0);
    if (us < 0 || us > 999999)
        us = us < 0 ? 0 : 999999;
    for (int i = 5; i >= 0; i--, us /= 10)
        micro[i] = (char)('0' + us % 10);
    micro[6] = '\0';
    PyObject *out = NULL;
    for (;;) {
        /* (held: the state may be replaced by a finalizer while this one allocates) */
        PyObject *seen_base = Py_NewRef(st->last_base), *seen_frac = Py_NewRef(st->last_frac);
        const char *sb = PyUnicode_AsUTF8(seen_base), *sf = PyUnicode_AsUTF8(seen_frac);
        const char *b = PyUnicode_AsUTF8(base);
        PyObject *last_base, *frac;
        if (sb == NULL || sf == NULL || b == NULL)
            frac = last_base = NULL;
        else if (strcmp(sb, b) == 0) {
            last_base = Py_NewRef(base);
            if (strcmp(micro, sf) > 0) {
                /* the fewest digits of this microsecond that sort after the previous
                   fraction: up to the first digit that differs (or all, when the previous
                   is a prefix of this one) */
                Py_ssize_t k = 0;
                while (sf[k] != '\0' && micro[k] == sf[k])
                    k++;
                frac = PyUnicode_FromStringAndSize(micro, k + 1);
            }
            else /* the same microsecond, or the clock went back: extend the previous */
                frac = frac_of(seen_frac, -1);
        }
        else if (strcmp(b, sb) > 0) { /* a new second (or the first id): the base alone */
            last_base = Py_NewRef(base);
            frac = PyUnicode_New(0, 0);
        }
        else { /* the clock went back past a second: extend the previous id */
            last_base = Py_NewRef(seen_base);
            frac = frac_of(seen_frac, -1);
        }
        if (last_base == NULL || frac == NULL) {
            Py_XDECREF(last_base);
            Py_XDECREF(frac);
            Py_DECREF(seen_base);
            Py_DECREF(seen_frac);
            break;
        }
        /* the text returned, made before the test below so nothing allocates after it */
        out = PyUnicode_GET_LENGTH(frac) ? joined(last_base, '.', frac, NULL)
                                         : Py_NewRef(last_base);
        int mine = out != NULL && st->last_base == seen_base && st->last_frac == seen_frac;
        if (mine) { /* (the old values are still held above: these stores free nothing) */
            Py_SETREF(st->last_base, last_base);
            Py_SETREF(st->last_frac, frac);
        }
        else {
            Py_DECREF(last_base);
            Py_DECREF(frac);
        }
        Py_DECREF(seen_base);
        Py_DECREF(seen_frac);
        if (mine || out == NULL)
            break;
        Py_CLEAR(out); /* another was issued meanwhile: again, from that one */
    }
    Py_DECREF(base);
    return out;
}

static PyObject *
state(PyObject *module, PyObject *unused)
{
    State *st = PyModule_GetState(module);
    return PyTuple_Pack(2, st->last_base, st->last_frac);
}

static PyObject *
set_state(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_CheckExact(args[0]) || !PyUnicode_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set_state() takes two str");
        return NULL;
    }
    State *st = PyModule_GetState(module);
    Py_SETREF(st->last_base, Py_NewRef(args[0]));
    Py_SETREF(st->last_frac, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}


/* setup(TraceContext, FrameContext, KINDS, _NAMES, _LABELS, threading._active,
         Thread.name, _thread_name, TRC_TYPES): what context() reads, given once by
   record.py (TRC_TYPES: a list of the classes a ``__trc`` may be, dict's setdefault theirs) */
static PyObject *
setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    State *st = PyModule_GetState(module);
    if (nargs != 9 || !PyType_Check(args[0]) || !PyType_Check(args[1]) ||
        !PyDict_CheckExact(args[2]) || !PyDict_CheckExact(args[3]) ||
        !PyDict_CheckExact(args[4]) || !PyDict_CheckExact(args[5]) || !PyList_CheckExact(args[8])) {
        PyErr_SetString(PyExc_TypeError, "setup() takes two classes, four dicts, two more, a list");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    Py_ssize_t offsets[7];
    for (int i = 0; i < 7; i++) { /* each slot's place in the object, from its descriptor */
        PyObject *d = PyDict_GetItemString(cls->tp_dict, SLOTS[i]);
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type) ||
            ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX ||
            (((PyMemberDescrObject *)d)->d_member->flags & READONLY)) {
            PyErr_Format(PyExc_TypeError, "setup(): %s is not a slot of %s", SLOTS[i],
                         cls->tp_name);
            return NULL;
        }
        offsets[i] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    clear_context(st);
    memcpy(st->offsets, offsets, sizeof offsets);
    st->cls = (PyTypeObject *)Py_NewRef(args[0]);
    st->frame_cls = (PyTypeObject *)Py_NewRef(args[1]);
    st->kinds = Py_NewRef(args[2]);
    st->names = Py_NewRef(args[3]);
    st->labels = Py_NewRef(args[4]);
    st->active = Py_NewRef(args[5]);
    st->name_prop = Py_NewRef(args[6]);
    st->py_thread_name = Py_NewRef(args[7]);
    st->trc_types = Py_NewRef(args[8]);
    st->s_trc = PyUnicode_InternFromString("__trc");
    st->s_up = PyUnicode_InternFromString("__up");
    st->s_down = PyUnicode_InternFromString("__down");
    st->s_id = PyUnicode_InternFromString("id");
    st->s_context = PyUnicode_InternFromString("context");
    st->s_thread = PyUnicode_InternFromString("thread");
    st->s_related = PyUnicode_InternFromString("related");
    st->s_name = PyUnicode_InternFromString("_name");
    st->s_tname = PyUnicode_InternFromString("name");
    st->empty_tuple = PyTuple_New(0);
    st->s_popitem = PyUnicode_InternFromString("popitem");
    st->last_kw = Py_BuildValue("(s)", "last");
    if (!st->s_trc || !st->s_up || !st->s_down || !st->s_id || !st->s_context ||
        !st->s_thread || !st->s_related || !st->s_name || !st->s_tname ||
        !st->empty_tuple || !st->s_popitem || !st->last_kw) {
        clear_context(st);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The calling thread's name, as record._thread_name() gives it: read from threading's
   table when the thread's class keeps Thread's own ``name`` property and attribute lookup
   (which then reads ``_name``); else that function, which asks the thread. */
static PyObject *
thread_name(State *st)
{
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident == NULL)
        return NULL;
    PyObject *thread = PyDict_GetItemWithError(st->active, ident);
    Py_DECREF(ident);
    if (thread == NULL && PyErr_Occurred())
        return NULL;
    PyTypeObject *t = thread != NULL ? Py_TYPE(thread) : NULL;
    PyObject *found = NULL;
    if (t != NULL && t->tp_getattro == PyObject_GenericGetAttr && t->tp_mro != NULL &&
        PyTuple_CheckExact(t->tp_mro)) {
        /* what ``type(thread).name`` finds, without asking the class (its own dicts only) */
        PyObject *mro = t->tp_mro;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro) && found == NULL; i++) {
            PyObject *d = ((PyTypeObject *)PyTuple_GET_ITEM(mro, i))->tp_dict;
            if (d == NULL || !PyDict_CheckExact(d))
                break;
            found = PyDict_GetItemWithError(d, st->s_tname);
            if (found == NULL && PyErr_Occurred())
                return NULL;
        }
    }
    if (found != NULL && found == st->name_prop) {
        /* (Thread.name returns self._name: the same lookup, one call less) */
        PyObject *name = PyObject_GetAttr(thread, st->s_name);
        if (name == NULL || PyUnicode_CheckExact(name))
            return name;
        Py_DECREF(name);
    }
    return PyObject_CallNoArgs(st->py_thread_name);
}

/* setdefault(d, key, value) with value stolen; -1 on error */
static int
put_default(PyObject *d, PyObject *key, PyObject *value)
{
    if (value == NULL)
        return -1;
    PyObject *got = PyDict_SetDefault(d, key, value);
    Py_DECREF(value);
    return got == NULL ? -1 : 0;
}

/* context(kind, name, label, values, trc) -> TraceContext(kind, name, label, values, trc),
   or None when this is not the usual case (a kind, name or label not seen yet, values or
   trc of another type than dict, before setup()): the class then makes it.  The same
   steps as TraceContext.__init__, with the same results. */
static PyObject *
context(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    State *st = PyModule_GetState(module);
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "context() takes kind, name, label, values, trc");
        return NULL;
    }
    PyObject *kind = args[0], *name = args[1], *label = args[2], *values = args[3];
    PyObject *trc = args[4];
    if (st->cls == NULL || !PyUnicode_CheckExact(kind) || !PyUnicode_CheckExact(name) ||
        !PyUnicode_CheckExact(label) || (values != Py_None && !PyDict_CheckExact(values)))
        Py_RETURN_NONE;
    if (trc != Py_None) { /* (a class of TRC_TYPES: identity, nothing asked of the class) */
        int known = 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(st->trc_types) && !known; i++)
            known = (PyObject *)Py_TYPE(trc) == PyList_GET_ITEM(st->trc_types, i);
        if (!known || !PyDict_Check(trc))
            Py_RETURN_NONE;
    }
    PyObject *code = PyDict_GetItemWithError(st->kinds, kind);
    PyObject *clean = code != NULL ? PyDict_GetItemWithError(st->names, name) : NULL;
    PyObject *tag = NULL; /* the cleaned label */
    if (clean != NULL && PyUnicode_GET_LENGTH(label) > 0)
        tag = PyDict_GetItemWithError(st->labels, label);
    if (PyErr_Occurred())
        return NULL;
    if (clean == NULL || !PyUnicode_CheckExact(code) || !PyUnicode_CheckExact(clean) ||
        PyUnicode_GET_LENGTH(clean) == 0 || (PyUnicode_GET_LENGTH(label) > 0 && tag == NULL) ||
        (tag != NULL && !PyUnicode_CheckExact(tag)))
        Py_RETURN_NONE; /* (TraceContext.__init__ cleans and caches it) */
    double now;
    if (now_of(&now) < 0)
        return NULL;
    PyObject *self = st->cls->tp_new(st->cls, st->empty_tuple, NULL);
    if (self == NULL)
        return NULL;
#define SLOT(i) (*(PyObject **)((char *)self + st->offsets[i]))
    PyObject *info = trc != Py_None ? Py_NewRef(trc) : PyDict_New();
    if (info == NULL || (values != Py_None && PyDict_Update(self, values) < 0) ||
        PyDict_SetItem(self, st->s_trc, info) < 0)
        goto error;
    PyObject *up = PyDict_GetItemWithError(self, st->s_up);
    if (up == NULL && PyErr_Occurred())
        goto error;
    if (up != NULL && PyType_IsSubtype(Py_TYPE(up), st->frame_cls)) {
        Py_INCREF(up); /* the caller's frame leads back down to this root */
        int bad = PyObject_SetItem(up, st->s_down, self);
        Py_DECREF(up);
        if (bad < 0)
            goto error;
    }
    /* (each slot of a new object is NULL: set once) */
    if ((SLOT(S_CREATED) = PyFloat_FromDouble(now)) == NULL)
        goto error;
    SLOT(S_NAME) = Py_NewRef(clean);
    SLOT(S_KIND) = Py_NewRef(kind);
    if ((SLOT(S_TIMESTAMP) = issue(st, now)) == NULL)
        goto error;
    SLOT(S_CTXID) = tag == NULL ? Py_NewRef(code) : joined(code, '-', tag, NULL);
    if (SLOT(S_CTXID) == NULL ||
        (SLOT(S_ID) = joined(clean, ':', SLOT(S_CTXID), SLOT(S_TIMESTAMP))) == NULL)
        goto error;
    SLOT(S_LIVE) = Py_NewRef(Py_None);
    if (put_default(info, st->s_id, Py_NewRef(SLOT(S_ID))) < 0 ||
        put_default(info, st->s_context, Py_NewRef(kind)) < 0)
        goto error;
    int has = PyDict_Contains(info, st->s_thread);
    if (has < 0 || (!has && put_default(info, st->s_thread, thread_name(st)) < 0))
        goto error;
    has = PyDict_Contains(info, st->s_related);
    if (has < 0 || (!has && put_default(info, st->s_related, PyDict_New()) < 0))
        goto error;
#undef SLOT
    Py_DECREF(info);
    return self;
error:
    Py_XDECREF(info);
    Py_DECREF(self);
    return NULL;
}

/* A slot of a context (new reference): read in place for TraceContext itself, asked for
   by name for anything else (a context only otrace makes, but not only of that class) */
static PyObject *
slot_of(State *st, PyObject *ctx, int i)
{
    if (Py_TYPE(ctx) != st->cls)
        return PyObject_GetAttrString(ctx, SLOTS[i]);
    PyObject *v = *(PyObject **)((char *)ctx + st->offsets[i]);
    if (v == NULL)
        PyErr_Format(PyExc_AttributeError, "context has no %s", SLOTS[i]);
    return Py_XNewRef(v);
}

/* level[key] of the store's directories (borrowed), NULL without an error when missing
   or not a dict */
static PyObject *
level_of(PyObject *level, PyObject *key)
{
    PyObject *sub = level != NULL ? PyDict_GetItemWithError(level, key) : NULL;
    return sub != NULL && PyDict_Check(sub) ? sub : NULL;
}

/* level[key], made (``shelf()``, store.Shelf) when missing (borrowed, held by ``level``);
   NULL with an error set, or without one when it is there but no dict */
static PyObject *
level_made(PyObject *level, PyObject *key, PyObject *shelf)
{
    PyObject *sub = PyDict_GetItemWithError(level, key);
    if (sub != NULL)
        return PyDict_Check(sub) ? sub : NULL;
    if (PyErr_Occurred() || (sub = PyObject_CallNoArgs(shelf)) == NULL)
        return NULL;
    int bad = PyDict_SetItem(level, key, sub);
    Py_DECREF(sub); /* (level holds it) */
    return bad < 0 ? NULL : PyDict_GetItemWithError(level, key);
}

/* store._pop: ``old`` out of ``recent``, directories left empty pruned; -1 on error */
static int
unfile(State *st, PyObject *recent, PyObject *old)
{
    PyObject *k[4] = {NULL, NULL, NULL, NULL};
    int rc = -1;
    for (int i = 0; i < 4; i++)
        if ((k[i] = slot_of(st, old, (int[]){S_KIND, S_NAME, S_CTXID, S_TIMESTAMP}[i])) == NULL)
            goto done;
    PyObject *l1 = level_of(recent, k[0]), *l2 = level_of(l1, k[1]), *l3 = level_of(l2, k[2]);
    rc = 0;
    if (PyErr_Occurred())
        rc = -1;
    else if (l3 != NULL && PyDict_GetItemWithError(l3, k[3]) == old) {
        rc = PyDict_DelItem(l3, k[3]);
        if (rc == 0 && PyDict_GET_SIZE(l3) == 0) {
            rc = PyDict_DelItem(l2, k[2]);
            if (rc == 0 && PyDict_GET_SIZE(l2) == 0) {
                rc = PyDict_DelItem(l1, k[1]);
                if (rc == 0 && PyDict_GET_SIZE(l1) == 0)
                    rc = PyDict_DelItem(recent, k[0]);
            }
        }
    }
    else if (PyErr_Occurred())
        rc = -1;
done:
    for (int i = 0; i < 4; i++)
        Py_XDECREF(k[i]);
    return rc;
}

/* file(recent, all, order, ctx, limit, saved, shelf): ContextStore._file, the store's lock
   held.  ``ctx`` goes into ``recent``'s directories (made by calling ``shelf``, store.Shelf,
   where missing), ``all`` and its kind's ``order``; past ``limit`` the oldest of ``order``
   goes (out of ``recent``, and out of ``all`` unless its id is in ``saved``).  Returns None
   (nothing evicted), the context evicted, True (filed, more than one to evict: the
   caller's _evict), or False (not the usual case -- a waiting context, not a TraceContext,
   a directory that is no dict: nothing done, Python files it).  Only dicts, sets, the
   OrderedDict and the Shelf class otrace made; no program code. */
static PyObject *
file(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    State *st = PyModule_GetState(module);
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "file() takes recent, all, order, ctx, limit, saved and shelf");
        return NULL;
    }
    PyObject *recent = args[0], *all = args[1], *order = args[2], *ctx = args[3];
    PyObject *saved = args[5], *shelf = args[6];
    if (st->cls == NULL || Py_TYPE(ctx) != st->cls || !PyDict_Check(recent) ||
        !PyDict_CheckExact(all) || order == Py_None || !PyAnySet_CheckExact(saved) ||
        !PyLong_CheckExact(args[4]))
        Py_RETURN_FALSE;
#define SLOT(i) (*(PyObject **)((char *)ctx + st->offsets[i]))
    PyObject *id = SLOT(S_ID), *ts = SLOT(S_TIMESTAMP);
    if (SLOT(S_LIVE) != Py_None || id == NULL || ts == NULL || !PyUnicode_CheckExact(id) ||
        !PyUnicode_CheckExact(ts) || SLOT(S_KIND) == NULL || SLOT(S_NAME) == NULL ||
        SLOT(S_CTXID) == NULL)
        Py_RETURN_FALSE;
    Py_ssize_t limit = PyLong_AsSsize_t(args[4]);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    /* (a directory made here may start a collection, whose finalizers may change the
       store: each level is looked up again from ``recent`` after the last one made) */
    PyObject *l1 = level_made(recent, SLOT(S_KIND), shelf);
    PyObject *l2 = l1 != NULL ? level_made(l1, SLOT(S_NAME), shelf) : NULL;
    PyObject *l3 = l2 != NULL ? level_made(l2, SLOT(S_CTXID), shelf) : NULL;
    if (l3 != NULL) {
        l1 = level_of(recent, SLOT(S_KIND));
        l2 = level_of(l1, SLOT(S_NAME));
        l3 = level_of(l2, SLOT(S_CTXID));
    }
#undef SLOT
    if (PyErr_Occurred())
        return NULL;
    if (l3 == NULL)
        Py_RETURN_FALSE; /* (a level that is no dict, or one a finalizer took away) */
    if (PyDict_SetItem(l3, ts, ctx) < 0 || PyDict_SetItem(all, id, ctx) < 0 ||
        PyObject_SetItem(order, id, ctx) < 0)
        return NULL;
    Py_ssize_t size = PyObject_Length(order);
    if (size < 0)
        return NULL;
    if (size - limit <= 0)
        Py_RETURN_NONE;
    if (size - limit > 1)
        Py_RETURN_TRUE;
    PyObject *call[3] = {NULL, order, Py_False}; /* order.popitem(last=False) */
    PyObject *pair = PyObject_VectorcallMethod(
        st->s_popitem, call + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, st->last_kw);
    if (pair == NULL)
        return NULL;
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
        Py_DECREF(pair);
        PyErr_SetString(PyExc_TypeError, "file(): order.popitem() gave no pair");
        return NULL;
    }
    PyObject *old = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    Py_DECREF(pair);
    PyObject *old_id = unfile(st, recent, old) < 0 ? NULL : slot_of(st, old, S_ID);
    int kept = old_id != NULL ? PySet_Contains(saved, old_id) : -1;
    int bad = kept < 0;
    if (kept == 0) { /* all.pop(old.id, None) */
        PyObject *there = PyDict_GetItemWithError(all, old_id);
        bad = (there == NULL && PyErr_Occurred()) || (there != NULL && PyDict_DelItem(all, old_id) < 0);
    }
    Py_XDECREF(old_id);
    if (bad) {
        Py_DECREF(old);
        return NULL;
    }
    return old;
}

static PyMethodDef methods[] = {
    {"new_timestamp", (PyCFunction)(void (*)(void))new_timestamp, METH_FASTCALL,
     "new_timestamp(now=None) -> record.new_timestamp's timestamp"},
    {"state", state, METH_NOARGS, "state() -> (base, fraction) of the last timestamp issued"},
    {"set_state", (PyCFunction)(void (*)(void))set_state, METH_FASTCALL,
     "set_state(base, fraction): the last timestamp issued, put back"},
    {"setup", (PyCFunction)(void (*)(void))setup, METH_FASTCALL,
     "setup(TraceContext, FrameContext, KINDS, names, labels, active, Thread.name, thread_name)"},
    {"context", (PyCFunction)(void (*)(void))context, METH_FASTCALL,
     "context(kind, name, label, values, trc) -> a new TraceContext, or None"},
    {"file", (PyCFunction)(void (*)(void))file, METH_FASTCALL,
     "file(recent, all, order, ctx, limit, saved, shelf) -> None, evicted, True or False"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_mod_multiple_interpreters /* (3.12+) module state only: any interpreter */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "otrace._trace_ids", "Optional C version of the trace id's clock.",
    sizeof(State), methods, slots, traverse, clear, NULL,
};

PyMODINIT_FUNC
PyInit__trace_ids(void)
{
    return PyModuleDef_Init(&module_def);
}
