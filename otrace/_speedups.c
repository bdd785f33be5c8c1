/* otrace._speedups: optional C versions of hot steps of recording and of the freeze.

   walk(frame)              call_stack.capture_call_stack's walk up the f_back chain
   plain_repr(obj, budget)  safe.brief(obj, budget) when that is repr(obj), else None
   holds_watched(loc, watch)  freeze's question of a frame's variables: any to copy?
   args_text(varargs, bound, brief)  handlers.args_text: a call's arguments as text
   bind(plan, args, kwargs, empty)   handlers._quick_bind: a call's arguments by name
   frames_holding, freeze_value, freeze_entries   the pickle_file freeze (freeze.py)
   new_text(cls, render, args, safe)  lazytext.lazy_text: a text rendered when read
   enter(), leave(), recording()     instrument.py's flag "this thread is recording"

   Each gives exactly what its pure-Python counterpart gives (otrace/contexts/speedups.py
   chooses; OTRACE_PURE=1 turns this module off).  Only the public C API, so one source
   builds on CPython 3.11-3.13; no global state (per-module state: a few strings and the
   texts of recent classes).  None runs code of the traced program: they look at exact
   built-in types only (whose repr is the interpreter's own C code); the only Python they
   call is otrace's own (brief, the freeze's placeholder maker).
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <string.h>

/* Module state: the start of object.__repr__'s text ("<module.Qualname object at ") for a
   few classes seen lately, each with the __module__ and __qualname__ it was made from --
   reused only while the class still has those very two (a class at the same address later,
   with the same two, would make the same text).  The class itself is not held. */
#define SEEN 8
typedef struct {
    PyObject *s_module;
    PyObject *s_job, *s_text, *s_empty; /* (new_text's attributes, "") */
    struct {
        PyTypeObject *type;
        PyObject *mod, *qual, *prefix;
    } seen[SEEN];
} State;

static int
exec_module(PyObject *module)
{
    State *st = PyModule_GetState(module);
    st->s_module = PyUnicode_InternFromString("__module__");
    st->s_job = PyUnicode_InternFromString("_job");
    st->s_text = PyUnicode_InternFromString("_text");
    st->s_empty = PyUnicode_New(0, 0);
    return st->s_module && st->s_job && st->s_text && st->s_empty ? 0 : -1;
}

static int
clear(PyObject *module)
{
    State *st = PyModule_GetState(module);
    Py_CLEAR(st->s_module);
    Py_CLEAR(st->s_job);
    Py_CLEAR(st->s_text);
    Py_CLEAR(st->s_empty);
    for (int i = 0; i < SEEN; i++) {
        st->seen[i].type = NULL;
        Py_CLEAR(st->seen[i].mod);
        Py_CLEAR(st->seen[i].qual);
        Py_CLEAR(st->seen[i].prefix);
    }
    return 0;
}

/* object.__repr__(value)'s text for an instance of a class made in Python
   ("<module.Qualname object at 0x...>"), or NULL with an error set -- tp_repr's own work
   when the class is another kind (then it is what CPython writes).  What object_repr reads:
   the class's own __module__ (its dict, never asked) and __qualname__. */
static PyObject *
instance_repr(State *st, PyObject *value)
{
    PyTypeObject *t = Py_TYPE(value);
    PyObject *mod = NULL, *qual = NULL;
    if (PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE) && t->tp_dict != NULL) {
        mod = PyDict_GetItemWithError(t->tp_dict, st->s_module);
        qual = ((PyHeapTypeObject *)t)->ht_qualname;
    }
    if (mod == NULL || qual == NULL || !PyUnicode_CheckExact(mod) ||
        !PyUnicode_CheckExact(qual) || PyUnicode_CompareWithASCIIString(mod, "builtins") == 0) {
        if (PyErr_Occurred())
            return NULL;
        return PyBaseObject_Type.tp_repr(value);
    }
    int slot = (int)(((uintptr_t)t >> 4) % SEEN);
    if (st->seen[slot].type != t || st->seen[slot].mod != mod || st->seen[slot].qual != qual) {
        PyObject *prefix = PyUnicode_FromFormat("<%U.%U object at ", mod, qual);
        if (prefix == NULL)
            return NULL;
        st->seen[slot].type = t;
        Py_XSETREF(st->seen[slot].mod, Py_NewRef(mod));
        Py_XSETREF(st->seen[slot].qual, Py_NewRef(qual));
        Py_XSETREF(st->seen[slot].prefix, prefix);
    }
    PyObject *prefix = st->seen[slot].prefix;
    char hex[2 + 2 * sizeof(void *) + 2], *at = hex + sizeof hex; /* "0x" digits ">" */
    uintptr_t p = (uintptr_t)value;
    *--at = '>';
    do
        *--at = "0123456789abcdef"[p & 15];
    while ((p >>= 4) != 0);
    *--at = 'x';
    *--at = '0';
    Py_ssize_t tail = hex + sizeof hex - at, head = PyUnicode_GET_LENGTH(prefix);
    PyObject *out = PyUnicode_New(head + tail, PyUnicode_MAX_CHAR_VALUE(prefix));
    if (out == NULL)
        return NULL;
    if (PyUnicode_CopyCharacters(out, 0, prefix, 0, head) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < tail; i++)
        PyUnicode_WRITE(PyUnicode_KIND(out), PyUnicode_DATA(out), head + i, (Py_UCS4)at[i]);
    return out;
}

/* walk(frame) -> (codes, lastis): each frame's f_code and f_lasti, from ``frame`` outwards
   (the loop in call_stack.py, at a third of its instructions) */
static PyObject *
walk(PyObject *module, PyObject *arg)
{
    PyObject *codes = PyList_New(0), *lastis = PyList_New(0), *pair;
    if (codes == NULL || lastis == NULL)
        goto fail;
    if (arg != Py_None) {
        if (!PyFrame_Check(arg)) {
            PyErr_SetString(PyExc_TypeError, "walk() takes a frame or None");
            goto fail;
        }
        PyFrameObject *frame = (PyFrameObject *)Py_NewRef(arg);
        while (frame != NULL) {
            PyCodeObject *code = PyFrame_GetCode(frame); /* (new references, both) */
            PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(frame));
            int bad = lasti == NULL || PyList_Append(codes, (PyObject *)code) < 0 ||
                      PyList_Append(lastis, lasti) < 0;
            Py_DECREF(code);
            Py_XDECREF(lasti);
            PyFrameObject *back = bad ? NULL : PyFrame_GetBack(frame); /* new or NULL */
            Py_DECREF(frame);
            /* (NULL is the end, or a frame object that could not be made) */
            if (bad || (back == NULL && PyErr_Occurred()))
                goto fail;
            frame = back;
        }
    }
    pair = PyTuple_New(2);
    if (pair == NULL)
        goto fail;
    PyTuple_SET_ITEM(pair, 0, codes); /* (steals) */
    PyTuple_SET_ITEM(pair, 1, lastis);
    return pair;
fail:
    Py_XDECREF(codes);
    Py_XDECREF(lastis);
    return NULL;
}

/* repr(s) of an exact str: made here for printable ASCII without quotes or backslashes
   (the usual name or word: repr's own scan and escaping are for the rest) */
static PyObject *
str_repr(PyObject *s)
{
    if (!PyUnicode_IS_ASCII(s))
        return PyObject_Repr(s);
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    const unsigned char *data = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < len; i++)
        if (data[i] < 0x20 || data[i] == 0x7f || data[i] == '\\' || data[i] == '\'')
            return PyObject_Repr(s);
    PyObject *out = PyUnicode_New(len + 2, 127);
    if (out == NULL)
        return NULL;
    unsigned char *to = PyUnicode_1BYTE_DATA(out);
    to[0] = to[len + 1] = '\'';
    memcpy(to + 1, data, len);
    return out;
}

/* The text safe._brief(obj, budget, depth) makes, when it is also repr(obj); NULL (and no
   error set) when it is not, or NULL with an error set.  It follows _brief step by step and
   gives up wherever _brief would write something else than repr: a cut string ("'ab'..."),
   "<big int>", "<list of 4>", "..." for the eleventh item or past the budget, and every
   type but exact str, int, float, bool, None, list, tuple and dict.  (_brief's shortcut for
   short strings and tiny scalars in a container gives what _brief itself would.) */
static PyObject *
plain(PyObject *obj, Py_ssize_t budget, int depth)
{
    if (PyUnicode_CheckExact(obj))
        return PyUnicode_GET_LENGTH(obj) <= budget ? str_repr(obj) : NULL;
    if (PyLong_CheckExact(obj)) {
        int overflow;
        (void)PyLong_AsLongLongAndOverflow(obj, &overflow); /* (an exact int: no __index__) */
        if (overflow) { /* 64 bits or more: ask the interpreter's own int.bit_length */
            PyObject *bits = PyObject_CallMethod(obj, "bit_length", NULL);
            if (bits == NULL)
                return NULL;
            long n = PyLong_AsLong(bits);
            Py_DECREF(bits);
            if (n >= 200) /* _brief: "<big int>" */
                return NULL;
        }
        return PyObject_Repr(obj);
    }
    if (PyFloat_CheckExact(obj) || PyBool_Check(obj) || obj == Py_None)
        return PyObject_Repr(obj); /* (bool cannot be subclassed) */
    int is_dict = PyDict_CheckExact(obj), is_list = PyList_CheckExact(obj);
    int is_tuple = PyTuple_CheckExact(obj);
    if (!(is_dict || is_list || is_tuple) || depth <= 0) /* depth 0: "<list of N>" */
        return NULL;
    depth -= 1;
    /* the texts of at most 10 items (a dict's as key, value) */
    PyObject *parts[20], *key = NULL, *value, *text = NULL;
    Py_ssize_t n = 0, i, pos = 0, size = 1, length = 2;
    Py_UCS4 maxchar = 127;
    for (i = 0;; i++) {
        if (is_dict) {
            if (!PyDict_Next(obj, &pos, &key, &value))
                break;
        }
        else if (is_list) { /* (the size read again: a finalizer run by the collector
                               while an item's text is made could shrink the list) */
            if (i >= PyList_GET_SIZE(obj))
                break;
            value = PyList_GET_ITEM(obj, i);
        }
        else {
            if (i >= PyTuple_GET_SIZE(obj))
                break;
            value = PyTuple_GET_ITEM(obj, i);
        }
        if (size > budget || i == 10) /* _brief: "..." */
            goto done;
        /* borrowed references held while texts are made (see above) */
        Py_INCREF(value);
        Py_XINCREF(key);
        Py_ssize_t start = n;
        if (is_dict) {
            parts[n] = plain(key, 40, depth);
            if (parts[n] != NULL)
                n++;
        }
        if (n == start + is_dict) {
            parts[n] = plain(value, 60, depth);
            if (parts[n] != NULL)
                n++;
        }
        Py_DECREF(value);
        Py_XDECREF(key);
        if (n != start + 1 + is_dict)
            goto done;
        for (Py_ssize_t j = start; j < n; j++) {
            Py_ssize_t len = PyUnicode_GET_LENGTH(parts[j]);
            size += len + 2; /* (_brief: len(text) + 2 for an item, text = key + ": " + value) */
            length += len + 2;
            if (PyUnicode_MAX_CHAR_VALUE(parts[j]) > maxchar)
                maxchar = PyUnicode_MAX_CHAR_VALUE(parts[j]);
        }
    }
    /* length: brackets, each part, and ", " or ": " after each but the last */
    if (n > 0)
        length -= 2;
    if (is_tuple && n == 1)
        length += 1; /* "(x,)" */
    text = PyUnicode_New(length, maxchar);
    if (text == NULL)
        goto done;
    int kind = PyUnicode_KIND(text);
    void *data = PyUnicode_DATA(text);
    Py_ssize_t at = 0;
    PyUnicode_WRITE(kind, data, at++, is_list ? '[' : is_tuple ? '(' : '{');
    for (i = 0; i < n; i++) {
        if (i > 0) {
            PyUnicode_WRITE(kind, data, at++, is_dict && i % 2 ? ':' : ',');
            PyUnicode_WRITE(kind, data, at++, ' ');
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(parts[i]);
        if (PyUnicode_CopyCharacters(text, at, parts[i], 0, len) < 0) {
            Py_CLEAR(text);
            goto done;
        }
        at += len;
    }
    if (is_tuple && n == 1)
        PyUnicode_WRITE(kind, data, at++, ',');
    PyUnicode_WRITE(kind, data, at++, is_list ? ']' : is_tuple ? ')' : '}');
    assert(at == length);
done:
    while (n > 0)
        Py_DECREF(parts[--n]);
    return text;
}

/* plain_repr(obj, budget) -> str | None: safe.brief(obj, budget) when that equals repr(obj)
   (then it is that), else None -- the Python brief runs.  brief cuts a text longer than its
   budget: such a text gives None too. */
static PyObject *
plain_repr(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyLong_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "plain_repr() takes an object and an int");
        return NULL;
    }
    Py_ssize_t budget = PyLong_AsSsize_t(args[1]);
    if (budget == -1 && PyErr_Occurred())
        return NULL;
    PyObject *text = plain(args[0], budget, 3);
    if (text == NULL) { /* (an error too, MemoryError say: the Python brief may do better) */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (PyUnicode_GET_LENGTH(text) > budget) {
        Py_DECREF(text);
        Py_RETURN_NONE;
    }
    return text;
}

/* bind(plan, args, kwargs, empty) -> handlers._quick_bind_plan's dict: a call's arguments by
   name, defaults applied, from the plan made once per signature ((name, kind, default) per
   parameter, kind an int of inspect's kinds); None when the call needs the general binder
   (an error to report, a name given twice, a keyword that is no exact str, ...).  Keywords
   are compared as exact strs only, so no program __eq__/__hash__ runs. */
enum { K_POS, K_POS_KW, K_VAR, K_KW, K_VARKW };
#define BIND_MAX 64

static PyObject *
bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "bind() takes a plan, args, kwargs and empty");
        return NULL;
    }
    PyObject *plan = args[0], *pos_args = args[1], *kwargs = args[2], *empty = args[3];
    if (!PyTuple_CheckExact(plan) || !PyTuple_CheckExact(pos_args) || !PyDict_CheckExact(kwargs) ||
        PyTuple_GET_SIZE(plan) > BIND_MAX)
        Py_RETURN_NONE;
    Py_ssize_t nplan = PyTuple_GET_SIZE(plan), npos = PyTuple_GET_SIZE(pos_args);
    Py_ssize_t nkw = PyDict_GET_SIZE(kwargs), i = 0, pos = 0, ntaken = 0;
    PyObject *key, *value, *taken[BIND_MAX];
    while (PyDict_Next(kwargs, &i, &key, &value))
        if (!PyUnicode_CheckExact(key))
            Py_RETURN_NONE;
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (Py_ssize_t p = 0; p < nplan; p++) {
        PyObject *entry = PyTuple_GET_ITEM(plan, p);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 0)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 1)))
            goto general;
        PyObject *name = PyTuple_GET_ITEM(entry, 0), *dflt = PyTuple_GET_ITEM(entry, 2);
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
        PyObject *got = NULL, *made = NULL;
        if (kind == -1 && PyErr_Occurred())
            goto error;
        if (kind <= K_POS_KW && pos < npos) {
            int twice = nkw ? PyDict_Contains(kwargs, name) : 0;
            if (twice < 0)
                goto error;
            if (twice)
                goto general;
            got = PyTuple_GET_ITEM(pos_args, pos++);
        }
        else if (kind <= K_POS_KW || kind == K_KW) {
            if (kind <= K_POS_KW)
                pos = npos + 1; /* later positional parameters come by keyword or default */
            if (kind != K_POS && nkw) {
                got = PyDict_GetItemWithError(kwargs, name);
                if (got == NULL && PyErr_Occurred())
                    goto error;
                if (got != NULL)
                    taken[ntaken++] = name;
            }
            if (got == NULL) {
                if (dflt == empty)
                    goto general;
                got = dflt;
            }
        }
        else if (kind == K_VAR) {
            got = made = pos < npos ? PyTuple_GetSlice(pos_args, pos, npos) : PyTuple_New(0);
            pos = npos > pos ? npos : pos;
        }
        else { /* **kwargs: the keywords no named parameter took */
            got = made = PyDict_New();
            Py_ssize_t j = 0;
            while (made != NULL && PyDict_Next(kwargs, &j, &key, &value)) {
                int seen = 0;
                for (Py_ssize_t t = 0; t < ntaken && !seen; t++)
                    seen = key == taken[t] || PyUnicode_Compare(key, taken[t]) == 0;
                if (!seen && PyDict_SetItem(made, key, value) < 0)
                    Py_CLEAR(made);
            }
            got = made;
            ntaken = nkw;
        }
        if (got == NULL || PyDict_SetItem(out, name, got) < 0) {
            Py_XDECREF(made);
            goto error;
        }
        Py_XDECREF(made);
    }
    if (pos < npos || ntaken != nkw)
        goto general;
    return out;
general:
    Py_DECREF(out);
    Py_RETURN_NONE;
error:
    Py_DECREF(out);
    return NULL;
}

/* The first 200 characters of text, and "..." if it was longer (handlers._value_text's cut) */
static PyObject *
cut200(PyObject *text)
{
    if (text == NULL || PyUnicode_GET_LENGTH(text) <= 200)
        return text;
    PyObject *head = PyUnicode_Substring(text, 0, 200);
    Py_DECREF(text);
    if (head == NULL)
        return NULL;
    PyObject *out = PyUnicode_FromFormat("%U...", head);
    Py_DECREF(head);
    return out;
}

/* Types brief shows by their contents (safe.BY_CONTENT_IDS): exact ones only */
static int
by_content(PyTypeObject *t)
{
    return t == &PyUnicode_Type || t == &PyLong_Type || t == &PyBytes_Type ||
           t == &PyFloat_Type || t == &PyBool_Type || t == Py_TYPE(Py_None) ||
           t == &PyComplex_Type || t == &PyList_Type || t == &PyTuple_Type ||
           t == &PyDict_Type || t == &PySet_Type || t == &PyFrozenSet_Type;
}

/* handlers._value_text(value): a new reference, or NULL with an error set.  ``brief`` is
   safe.brief, asked where this would not give its text at once. */
static PyObject *
value_text(State *st, PyObject *value, PyObject *brief)
{
    PyTypeObject *t = Py_TYPE(value);
    if (t == &PyUnicode_Type) /* as typed in conditions: unquoted */
        return cut200(Py_NewRef(value));
    if (t == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow && v > -1000000000000000LL && v < 1000000000000000LL)
            return PyObject_Repr(value); /* (an exact int: the interpreter's own repr) */
    }
    else if (!by_content(t) && !PyType_IsSubtype(t, &PyType_Type) &&
             !PyType_IsSubtype(t, (PyTypeObject *)PyExc_BaseException))
        /* an instance of a program class: object.__repr__, which reads only the class's own
           __module__ and name */
        return cut200(instance_repr(st, value));
    else if (PyType_IsSubtype(t, &PyType_Type))
        return PyType_GetName((PyTypeObject *)value); /* (type.__name__, never a metaclass's) */
    PyObject *text = plain(value, 200, 3);
    if (text != NULL && PyUnicode_GET_LENGTH(text) <= 200)
        return text;
    Py_XDECREF(text);
    PyErr_Clear();
    return PyObject_CallFunction(brief, "Oi", value, 200);
}

/* Copy ``piece`` into ``out`` at ``at`` (out is wide enough: its maxchar covers it) */
static void
put(PyObject *out, Py_ssize_t at, PyObject *piece)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(piece);
    int kind = PyUnicode_KIND(out);
    if (PyUnicode_KIND(piece) == kind) /* (the usual: both ASCII or Latin-1) */
        memcpy((char *)PyUnicode_DATA(out) + at * kind, PyUnicode_DATA(piece), len * kind);
    else
        for (Py_ssize_t i = 0; i < len; i++)
            PyUnicode_WRITE(kind, PyUnicode_DATA(out), at + i, PyUnicode_READ_CHAR(piece, i));
}

#define ARGS_MAX 32

/* args_text(varargs, bound, brief) -> str | None: handlers.args_text -- "name=value, ..."
   of a call's arguments (``bound``, an exact dict; the ``*args`` parameter ``varargs``, or
   None, shown without its name, and left out when empty).  None: not one to do here (a
   name that is no str, *args no tuple, more than ARGS_MAX arguments).  Each value's text
   is made first, then the whole text at its size in one piece. */
static PyObject *
args_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || (args[0] != Py_None && !PyUnicode_CheckExact(args[0])) ||
        !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "args_text() takes a name or None, a dict and brief");
        return NULL;
    }
    PyObject *varargs = args[0], *bound = args[1], *brief = args[2];
    State *st = PyModule_GetState(module);
    PyObject *names[ARGS_MAX], *shown[ARGS_MAX], *key, *value, *text = NULL;
    Py_ssize_t n = 0, pos = 0, length = 0;
    Py_UCS4 maxchar = 127;
    /* (the dict is the call's own; a finalizer run while a text is made could still change
       it: each key and value is held meanwhile, and PyDict_Next reads the table as it is) */
    while (PyDict_Next(bound, &pos, &key, &value)) {
        int star = PyUnicode_CheckExact(key) && varargs != Py_None &&
                   PyUnicode_Compare(key, varargs) == 0;
        if (!PyUnicode_CheckExact(key) || (star && !PyTuple_CheckExact(value)) ||
            n == ARGS_MAX) {
            text = Py_NewRef(Py_None); /* (a name that is no str, *args no tuple: Python) */
            goto done;
        }
        if (star && PyTuple_GET_SIZE(value) == 0)
            continue; /* (an empty *args: left out) */
        Py_INCREF(key);
        Py_INCREF(value);
        PyObject *one = star ? PyObject_CallFunction(brief, "Oi", value, 200)
                             : value_text(st, value, brief);
        Py_DECREF(value);
        if (one != NULL && !PyUnicode_Check(one)) {
            Py_SETREF(one, NULL);
            PyErr_SetString(PyExc_TypeError, "args_text(): brief gave no str");
        }
        if (one == NULL) {
            Py_DECREF(key);
            goto done;
        }
        names[n] = star ? NULL : key; /* (held: released below) */
        if (star)
            Py_DECREF(key);
        shown[n++] = one;
        length += (n > 1 ? 2 : 0) + PyUnicode_GET_LENGTH(one);
        if (PyUnicode_MAX_CHAR_VALUE(one) > maxchar)
            maxchar = PyUnicode_MAX_CHAR_VALUE(one);
        if (!star) {
            length += PyUnicode_GET_LENGTH(key) + 1;
            if (PyUnicode_MAX_CHAR_VALUE(key) > maxchar)
                maxchar = PyUnicode_MAX_CHAR_VALUE(key);
        }
    }
    text = PyUnicode_New(length, maxchar);
    if (text == NULL)
        goto done;
    Py_ssize_t at = 0;
    int kind = PyUnicode_KIND(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0) {
            PyUnicode_WRITE(kind, PyUnicode_DATA(text), at++, ',');
            PyUnicode_WRITE(kind, PyUnicode_DATA(text), at++, ' ');
        }
        if (names[i] != NULL) {
            put(text, at, names[i]);
            at += PyUnicode_GET_LENGTH(names[i]);
            PyUnicode_WRITE(kind, PyUnicode_DATA(text), at++, '=');
        }
        put(text, at, shown[i]);
        at += PyUnicode_GET_LENGTH(shown[i]);
    }
    assert(at == length);
done:
    while (n > 0) {
        n--;
        Py_XDECREF(names[n]);
        Py_DECREF(shown[n]);
    }
    return text;
}

/* -- the pickle_file freeze (contexts/freeze.py): frames_holding, freeze_value/_entries -- */

/* Up to 8 classes: watch's members, when each is a class whose metaclass is type itself --
   membership of such a class is then identity (type's hash and equality are the
   interpreter's), and a comparison of pointers gives what PySet_Contains gives at a tenth of
   its cost.  n 0 when watch has another member or more than 8 (PySet_Contains then).  bloom:
   one bit per class, from its address, so that most values' classes are passed over at once. */
typedef struct {
    PyObject *watch, *types[8];
    Py_ssize_t n;
    unsigned long long bloom;
} watching;

#define BLOOM_BIT(p) (1ULL << (((uintptr_t)(p) >> 4) & 63))

static int
start_watching(watching *w, PyObject *watch)
{
    PyObject *it = PyObject_GetIter(watch), *item; /* (an exact frozenset: its own iterator) */
    w->watch = watch;
    w->n = 0;
    w->bloom = 0;
    if (it == NULL)
        return -1;
    while ((item = PyIter_Next(it)) != NULL) {
        int ok = w->n < 8 && Py_IS_TYPE(item, &PyType_Type);
        if (ok) {
            w->types[w->n++] = item; /* (borrowed: the frozenset keeps it) */
            w->bloom |= BLOOM_BIT(item);
        }
        Py_DECREF(item);
        if (!ok) {
            w->n = 0;
            break;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* 1 if v's class is one of w's, 0 if not, -1 on error.  Only classes whose metaclass is
   type itself are compared or looked up: hashing and comparing those is the interpreter's
   identity (a class of a metaclass of the program's could run its __hash__/__eq__). */
static inline int
watched_in(PyObject *v, watching *w)
{
    PyTypeObject *t = Py_TYPE(v);
    if (!Py_IS_TYPE((PyObject *)t, &PyType_Type))
        return 0;
    if (w->n == 0)
        return PySet_Contains(w->watch, (PyObject *)t);
    if (!(w->bloom & BLOOM_BIT(t)))
        return 0;
    for (Py_ssize_t i = 0; i < w->n; i++)
        if (w->types[i] == (PyObject *)t)
            return 1;
    return 0;
}

/* watched_in of v, or -- v an exact tuple of w's -- of any of its items */
static int
watched_item(PyObject *v, watching *w)
{
    int r = watched_in(v, w);
    if (r <= 0 || !PyTuple_CheckExact(v))
        return r;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++) {
        r = watched_in(PyTuple_GET_ITEM(v, i), w);
        if (r != 0)
            return r;
    }
    return 0;
}

/* holds_watched's scan of one frame's variables (1, 0, or -1 with an error set); nothing
   here allocates or runs Python code */
static int
loc_holds(PyObject *loc, watching *w)
{
    PyObject *key, *value;
    int r = 0;
    if (PyDict_Check(loc)) {
        Py_ssize_t pos = 0;
        while (r == 0 && PyDict_Next(loc, &pos, &key, &value))
            r = watched_item(value, w);
    }
    else if (PyList_CheckExact(loc)) {
        for (Py_ssize_t i = 0; r == 0 && i < PyList_GET_SIZE(loc); i++) {
            PyObject *pair = PyList_GET_ITEM(loc, i);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "a frame's variables: pairs must be 2-tuples");
                return -1;
            }
            r = watched_item(PyTuple_GET_ITEM(pair, 1), w);
        }
    }
    else if (PyTuple_CheckExact(loc)) { /* (the values of the code's names: see lazy.Raw) */
        for (Py_ssize_t i = 0; r == 0 && i < PyTuple_GET_SIZE(loc); i++)
            r = watched_item(PyTuple_GET_ITEM(loc, i), w);
    }
    else {
        PyErr_SetString(PyExc_TypeError,
                        "a frame's variables are a dict, a list of pairs or a tuple of values");
        return -1;
    }
    return r;
}

/* holds_watched(loc, watch) -> bool: freeze._holds_watched -- does a frame's variables (a
   dict, a list of (name, value) pairs, or a tuple of values) hold a value whose class is in
   the frozenset watch, other than tuple, or a tuple holding one?  frames_holding's scan of
   one frame. */
static PyObject *
holds_watched(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyFrozenSet_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "holds_watched() takes variables and a frozenset");
        return NULL;
    }
    watching w;
    int r = start_watching(&w, args[1]) < 0 ? -1 : loc_holds(args[0], &w);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* frames_holding(raws, watch) -> list | None: freeze._frames_holding -- the indices of the
   raw records (lazy.Raw) whose variables (raw[2]; None or empty: none) hold a value of a
   class in the frozenset watch, tuples as holds_watched sees them; None if no record does. */
static PyObject *
frames_holding(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyFrozenSet_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "frames_holding() takes a list and a frozenset");
        return NULL;
    }
    PyObject *raws = args[0], *found = NULL;
    watching w;
    if (start_watching(&w, args[1]) < 0)
        return NULL;
    /* (the list is capture's own and never changes; its size is read each time anyway) */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(raws); i++) {
        PyObject *raw = PyList_GET_ITEM(raws, i);
        if (!PyTuple_CheckExact(raw) || PyTuple_GET_SIZE(raw) < 3) {
            PyErr_SetString(PyExc_TypeError, "frames_holding(): records are tuples");
            goto fail;
        }
        PyObject *loc = PyTuple_GET_ITEM(raw, 2);
        if (loc == Py_None || (PyDict_Check(loc) && PyDict_GET_SIZE(loc) == 0) ||
            ((PyList_CheckExact(loc) || PyTuple_CheckExact(loc)) && Py_SIZE(loc) == 0))
            continue; /* (Python: ``not loc``) */
        int r = loc_holds(loc, &w);
        if (r < 0)
            goto fail;
        if (r == 0)
            continue;
        PyObject *index = PyLong_FromSsize_t(i);
        if (index != NULL && found == NULL)
            found = PyList_New(0);
        if (index == NULL || found == NULL || PyList_Append(found, index) < 0) {
            Py_XDECREF(index);
            goto fail;
        }
        Py_DECREF(index);
    }
    return found != NULL ? found : Py_NewRef(Py_None);
fail:
    Py_XDECREF(found);
    return NULL;
}

/* What freeze_value needs besides the value: freeze._freeze's arguments, read once */
typedef struct {
    PyTypeObject *context;  /* FrameContext: its instances become placeholder(obj, limits) */
    PyObject *placeholder;
    PyObject *limits;
    PyObject *memo;         /* exact dict: id(original) -> its copy */
    Py_ssize_t max_depth, max_items;
} freezing;

/* Exact classes whose values freeze keeps as they are, without looking further */
static int
immutable(PyTypeObject *t)
{
    return t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type ||
           t == &PyBool_Type || t == Py_TYPE(Py_None) || t == &PyBytes_Type ||
           t == &PyComplex_Type;
}

/* Exact classes whose hash and equality are the interpreter's (safe.PLAIN_KEY_IDS) */
static int
plain_key_class(PyTypeObject *t)
{
    return immutable(t); /* (the same seven) */
}

static PyObject *freeze_one(PyObject *obj, Py_ssize_t depth, freezing *f);

/* memo[id(obj)] = copy; 0, or -1 with an error set */
static int
remember(freezing *f, PyObject *obj, PyObject *copy)
{
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL)
        return -1;
    int r = PyDict_SetItem(f->memo, key, copy);
    Py_DECREF(key);
    return r;
}

/* A dict's entries as one flat list (key, value, key, value...), filled without allocating
   (so without a collection, or a finalizer that might change the dict, while it is read):
   list(dict.items(obj)), of any dict, subclasses too (its own table).  *plain: whether every
   key is of a class whose hash and equality are the interpreter's. */
static PyObject *
dict_snapshot(PyObject *obj, Py_ssize_t *size, int *plain)
{
    PyObject *items, *key, *value;
    Py_ssize_t n, pos = 0, i = 0;
    for (;;) {
        n = PyDict_GET_SIZE(obj);
        items = PyList_New(2 * n);
        if (items == NULL)
            return NULL;
        if (PyDict_GET_SIZE(obj) == n)
            break;
        Py_DECREF(items);
    }
    *plain = 1;
    while (PyDict_Next(obj, &pos, &key, &value)) {
        PyList_SET_ITEM(items, i++, Py_NewRef(key));
        PyList_SET_ITEM(items, i++, Py_NewRef(value));
        *plain &= plain_key_class(Py_TYPE(key));
    }
    *size = n;
    return items;
}

/* freeze._freeze of an exact dict, depth already counted: a new reference or NULL */
static PyObject *
freeze_dict(PyObject *obj, Py_ssize_t depth, freezing *f)
{
    PyObject *value, *out = NULL;
    Py_ssize_t n, i;
    int plain_keys;
    PyObject *items = dict_snapshot(obj, &n, &plain_keys);
    if (items == NULL)
        return NULL;
    if (!plain_keys) {
        /* storing under a program object's key would run its __hash__ (and __eq__): a
           shallow copy (the interpreter reuses the stored hashes) is as far as it goes */
        out = PyDict_Copy(obj);
        if (out != NULL && remember(f, obj, out) < 0)
            Py_CLEAR(out);
        Py_DECREF(items);
        return out;
    }
    out = PyDict_New();
    if (out == NULL || remember(f, obj, out) < 0)
        goto fail;
    for (i = 0; i < 2 * n; i += 2) {
        value = PyList_GET_ITEM(items, i + 1);
        PyObject *copy = immutable(Py_TYPE(value)) ? Py_NewRef(value)
                                                   : freeze_one(value, depth, f);
        int bad = copy == NULL || PyDict_SetItem(out, PyList_GET_ITEM(items, i), copy) < 0;
        Py_XDECREF(copy);
        if (bad)
            goto fail;
    }
    Py_DECREF(items);
    return out;
fail:
    Py_DECREF(items);
    Py_XDECREF(out);
    return NULL;
}

/* freeze._freeze of an exact list or tuple, depth already counted */
static PyObject *
freeze_sequence(PyObject *obj, Py_ssize_t depth, freezing *f)
{
    int is_list = PyList_CheckExact(obj);
    PyObject *copied = PyList_New(0), *out = NULL;
    if (copied == NULL)
        return NULL;
    if (is_list && remember(f, obj, copied) < 0) /* before its items: a list may hold itself */
        goto done;
    /* (a list's size read again each time, as its iterator does: copying an item may run a
       finalizer that changes it) */
    for (Py_ssize_t i = 0; i < (is_list ? PyList_GET_SIZE(obj) : PyTuple_GET_SIZE(obj)); i++) {
        PyObject *v = Py_NewRef(is_list ? PyList_GET_ITEM(obj, i) : PyTuple_GET_ITEM(obj, i));
        PyObject *copy = immutable(Py_TYPE(v)) ? Py_NewRef(v) : freeze_one(v, depth, f);
        Py_DECREF(v);
        int bad = copy == NULL || PyList_Append(copied, copy) < 0;
        Py_XDECREF(copy);
        if (bad)
            goto done;
    }
    if (is_list) {
        out = Py_NewRef(copied);
        goto done;
    }
    /* a tuple of what did not need copying is itself safe to keep */
    int same = 1;
    for (Py_ssize_t i = 0; same && i < PyList_GET_SIZE(copied); i++)
        same = PyList_GET_ITEM(copied, i) == PyTuple_GET_ITEM(obj, i);
    out = same ? Py_NewRef(obj) : PyList_AsTuple(copied);
    if (out != NULL && remember(f, obj, out) < 0)
        Py_CLEAR(out);
done:
    Py_DECREF(copied);
    return out;
}

/* freeze._freeze(obj, depth, limits, memo): a new reference, or NULL with an error set */
static PyObject *
freeze_one(PyObject *obj, Py_ssize_t depth, freezing *f)
{
    PyTypeObject *cls = Py_TYPE(obj);
    Py_ssize_t size;
    if (cls == &PyDict_Type)
        size = PyDict_GET_SIZE(obj);
    else if (cls == &PyList_Type)
        size = PyList_GET_SIZE(obj);
    else if (cls == &PyTuple_Type)
        size = PyTuple_GET_SIZE(obj);
    else if (cls == &PySet_Type)
        size = PySet_GET_SIZE(obj);
    else if (PyType_IsSubtype(cls, f->context)) /* (issubclass: the classes' own MROs) */
        return PyObject_CallFunctionObjArgs(f->placeholder, obj, f->limits, NULL);
    else
        return Py_NewRef(obj); /* a frozenset, a scalar, or an object kept by reference */
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL)
        return NULL;
    PyObject *done = PyDict_GetItemWithError(f->memo, key); /* (borrowed) */
    Py_DECREF(key);
    if (done != NULL)
        return Py_NewRef(done);
    if (PyErr_Occurred())
        return NULL;
    if (depth >= f->max_depth || size > f->max_items)
        return Py_NewRef(obj);
    depth += 1;
    if (cls == &PySet_Type) {
        /* (elements of sets are hashable, usually immutable; the copy reuses their
           stored hashes) */
        PyObject *out = PySet_New(obj);
        if (out != NULL && remember(f, obj, out) < 0)
            Py_CLEAR(out);
        return out;
    }
    if (Py_EnterRecursiveCall(" while freezing a trace context"))
        return NULL;
    PyObject *out =
        cls == &PyDict_Type ? freeze_dict(obj, depth, f) : freeze_sequence(obj, depth, f);
    Py_LeaveRecursiveCall();
    return out;
}

/* An int argument as a Py_ssize_t, a bigger one as the largest */
static int
as_size(PyObject *value, Py_ssize_t *out)
{
    if (!PyLong_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "freeze_value(): limits must be ints");
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = overflow > 0 || v > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX
           : overflow < 0 || v < -PY_SSIZE_T_MAX ? -PY_SSIZE_T_MAX
                                                  : (Py_ssize_t)v;
    return 0;
}

/* f for freeze_one from the arguments of freeze_value and freeze_entries: how is (the
   context class, the placeholder's maker, "max_depth", "max_items") -- the names of the two
   attributes of limits read here, Python's own strs (no str made per call) */
static int
start_freezing(freezing *f, PyObject *how, PyObject *limits, PyObject *memo)
{
    if (!PyTuple_CheckExact(how) || PyTuple_GET_SIZE(how) != 4 ||
        !PyType_Check(PyTuple_GET_ITEM(how, 0)) ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(how, 2)) ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(how, 3)) || !PyDict_CheckExact(memo)) {
        PyErr_SetString(PyExc_TypeError,
                        "freezing takes (class, callable, str, str), limits and a dict");
        return -1;
    }
    f->context = (PyTypeObject *)PyTuple_GET_ITEM(how, 0);
    f->placeholder = PyTuple_GET_ITEM(how, 1);
    f->limits = limits;
    f->memo = memo;
    PyObject *max_depth = PyObject_GetAttr(limits, PyTuple_GET_ITEM(how, 2));
    PyObject *max_items = max_depth ? PyObject_GetAttr(limits, PyTuple_GET_ITEM(how, 3)) : NULL;
    int bad = max_items == NULL || as_size(max_depth, &f->max_depth) < 0 ||
              as_size(max_items, &f->max_items) < 0;
    Py_XDECREF(max_depth);
    Py_XDECREF(max_items);
    return bad ? -1 : 0;
}

/* freeze_value(how, obj, depth, limits, memo): freeze._freeze(obj, depth, limits, memo)
   (its pure version is freeze._py_freeze) -- exact dicts, lists, tuples and sets copied down
   to limits.max_depth, each of at most limits.max_items items, through memo (an exact dict,
   id -> copy); an instance of the context class (how, see start_freezing) becomes
   placeholder(obj, limits); everything else is kept.  Only exact built-in types are looked
   into: no program code runs (the placeholder's maker is otrace's). */
static PyObject *
freeze_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyTuple_CheckExact(args[0]) || PyTuple_GET_SIZE(args[0]) != 4 ||
        !PyType_Check(PyTuple_GET_ITEM(args[0], 0)) || !PyLong_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "freeze_value() takes (class, callable, str, str), a value, an int, "
                        "limits and a dict");
        return NULL;
    }
    PyObject *obj = args[1];
    PyTypeObject *cls = Py_TYPE(obj);
    if (cls != &PyDict_Type && cls != &PyList_Type && cls != &PyTuple_Type &&
        cls != &PySet_Type && !PyType_IsSubtype(cls, (PyTypeObject *)PyTuple_GET_ITEM(args[0], 0)))
        return Py_NewRef(obj); /* (the usual value: no limits to read) */
    freezing f;
    Py_ssize_t depth;
    if (start_freezing(&f, args[0], args[3], args[4]) < 0 || as_size(args[2], &depth) < 0)
        return NULL;
    return freeze_one(obj, depth, &f);
}

/* freeze_entries(how, d, skip, limits, memo) -> dict | None: freeze._py_trc_copy -- a copy
   of the dict d (of a subclass too: its own table; None if a key is of a class whose hash is
   not the interpreter's, safe.PLAIN_KEY_IDS: the Python copy then) whose values of an exact dict, list, tuple or set are
   frozen as freeze_value(how, value, 1, limits, memo) freezes them, but under a key that is
   an exact str in the frozenset skip. */
static PyObject *
freeze_entries(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyDict_Check(args[1]) || !PyFrozenSet_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "freeze_entries() takes (class, callable, str, str), a dict, a "
                        "frozenset, limits and a dict");
        return NULL;
    }
    freezing f;
    PyObject *d = args[1], *skip = args[2], *key, *value, *out;
    if (start_freezing(&f, args[0], args[3], args[4]) < 0)
        return NULL;
    if (PyDict_CheckExact(d)) {
        Py_ssize_t pos = 0;
        while (PyDict_Next(d, &pos, &key, &value))
            if (!plain_key_class(Py_TYPE(key)))
                return Py_NewRef(Py_None); /* (storing under it would run its __hash__) */
        out = PyDict_Copy(d); /* (the stored hashes reused) */
        if (out == NULL)
            return NULL;
    }
    else { /* (a subclass's copy by PyDict_Copy would read it through its keys/[]) */
        Py_ssize_t n;
        int plain;
        PyObject *items = dict_snapshot(d, &n, &plain);
        if (items == NULL)
            return NULL;
        if (!plain) {
            Py_DECREF(items);
            return Py_NewRef(Py_None);
        }
        out = PyDict_New();
        for (Py_ssize_t i = 0; out != NULL && i < 2 * n; i += 2)
            if (PyDict_SetItem(out, PyList_GET_ITEM(items, i), PyList_GET_ITEM(items, i + 1)) <
                0)
                Py_CLEAR(out);
        Py_DECREF(items);
        if (out == NULL)
            return NULL;
    }
    /* (only values of keys already there are replaced: allowed while iterating; and out is
       nobody else's yet) */
    Py_ssize_t pos = 0;
    while (PyDict_Next(out, &pos, &key, &value)) {
        PyTypeObject *t = Py_TYPE(value);
        if (t != &PyDict_Type && t != &PyList_Type && t != &PyTuple_Type && t != &PySet_Type)
            continue;
        if (PyUnicode_CheckExact(key)) {
            int r = PySet_Contains(skip, key);
            if (r < 0)
                goto fail;
            if (r)
                continue;
        }
        Py_INCREF(key); /* (held: copying may run the placeholder's maker, or a collection) */
        Py_INCREF(value);
        PyObject *copy = freeze_one(value, 1, &f);
        int bad = copy == NULL || PyDict_SetItem(out, key, copy) < 0;
        Py_DECREF(key);
        Py_DECREF(value);
        Py_XDECREF(copy);
        if (bad)
            goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* -- lazytext.lazy_text ------------------------------------------------------------------ */

/* new_text(cls, render, args[, safe]) -> lazytext.lazy_text(render, args, safe): a new
   ``cls`` (LazyText) made as ``object.__new__(cls)`` makes it, with ``_job`` (render, args,
   safe) and ``_text`` "" -- or None when ``cls`` is made or has its attributes set some
   other way than object's (then Python does it).  A third of the instructions of the
   Python function, most of them object.__new__'s checks of its arguments. */
static PyObject *
new_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || nargs > 4 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "new_text() takes a class, a callable, a tuple "
                                         "and a callable or None");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    if (cls->tp_new != PyBaseObject_Type.tp_new ||
        cls->tp_setattro != PyBaseObject_Type.tp_setattro)
        Py_RETURN_NONE;
    State *st = PyModule_GetState(module);
    PyObject *job = PyTuple_New(3);
    if (job == NULL)
        return NULL;
    PyTuple_SET_ITEM(job, 0, Py_NewRef(args[1]));
    PyTuple_SET_ITEM(job, 1, Py_NewRef(args[2]));
    PyTuple_SET_ITEM(job, 2, Py_NewRef(nargs == 4 ? args[3] : Py_None));
    PyObject *empty = PyTuple_New(0);
    PyObject *out = empty == NULL ? NULL : cls->tp_new(cls, empty, NULL);
    Py_XDECREF(empty);
    if (out != NULL && (PyObject_SetAttr(out, st->s_job, job) < 0 ||
                        PyObject_SetAttr(out, st->s_text, st->s_empty) < 0))
        Py_CLEAR(out);
    Py_DECREF(job);
    return out;
}

/* enter() -> bool: set this thread's "recording" flag; False (nothing set) when it was set
   already.  leave(): clear it.  recording() -> bool: is it set?  instrument.py's guard that
   runs a traced function called by otrace's own recording untraced.  A C thread-local: each
   Python thread is one OS thread, and these cost a tenth of a threading.local attribute's
   read or write.  (Per OS thread, not per interpreter: a subinterpreter's traced function
   called while this thread records runs untraced too -- the safe side.) */
static _Thread_local int recording_now;

static PyObject *
enter(PyObject *module, PyObject *unused)
{
    if (recording_now)
        Py_RETURN_FALSE;
    recording_now = 1;
    Py_RETURN_TRUE;
}

static PyObject *
leave(PyObject *module, PyObject *unused)
{
    recording_now = 0;
    Py_RETURN_NONE;
}

static PyObject *
recording(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(recording_now);
}

static PyMethodDef methods[] = {
    {"enter", enter, METH_NOARGS, "enter() -> True, this thread now recording; False if it was"},
    {"leave", leave, METH_NOARGS, "leave(): this thread no longer recording"},
    {"recording", recording, METH_NOARGS, "recording() -> whether this thread is recording"},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL,
     "bind(plan, args, kwargs, empty) -> the arguments by name, or None (the general binder)"},
    {"args_text", (PyCFunction)(void (*)(void))args_text, METH_FASTCALL,
     "args_text(varargs, bound, brief) -> handlers.args_text's text, or None"},
    {"walk", walk, METH_O, "walk(frame) -> (codes, lastis), from frame outwards"},
    {"plain_repr", (PyCFunction)(void (*)(void))plain_repr, METH_FASTCALL,
     "plain_repr(obj, budget) -> safe.brief(obj, budget) when that is repr(obj), else None"},
    {"holds_watched", (PyCFunction)(void (*)(void))holds_watched, METH_FASTCALL,
     "holds_watched(loc, watch) -> bool: a frame's variables hold a value of a watched class"},
    {"frames_holding", (PyCFunction)(void (*)(void))frames_holding, METH_FASTCALL,
     "frames_holding(raws, watch) -> indices of the raw records holding a watched value"},
    {"freeze_value", (PyCFunction)(void (*)(void))freeze_value, METH_FASTCALL,
     "freeze_value(how, obj, depth, limits, memo) -> freeze._freeze's copy"},
    {"new_text", (PyCFunction)(void (*)(void))new_text, METH_FASTCALL,
     "new_text(cls, render, args[, safe]) -> lazytext.lazy_text's text, or None"},
    {"freeze_entries", (PyCFunction)(void (*)(void))freeze_entries, METH_FASTCALL,
     "freeze_entries(how, d, skip, limits, memo) -> freeze._py_trc_copy's copy, or None"},
    {NULL, NULL, 0, NULL},
};

static int
traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = PyModule_GetState(module);
    for (int i = 0; i < SEEN; i++) {
        Py_VISIT(st->seen[i].mod);
        Py_VISIT(st->seen[i].qual);
        Py_VISIT(st->seen[i].prefix);
    }
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
    PyModuleDef_HEAD_INIT, "otrace._speedups", "Optional C versions of otrace's hot steps.",
    sizeof(State), methods, slots, traverse, clear, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module_def);
}
