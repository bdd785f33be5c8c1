/* otrace._trace_ids: optional C version of record.new_timestamp, the trace id's clock.

   new_timestamp(now=None) -> str       record.new_timestamp's timestamp
   state() -> (base, fraction)          the last one issued, in two parts (tests)
   set_state(base, fraction)            put it back (tests that issue ids of other times)

   Every context asks for one; the Python version costs about ten thousand instructions, most
   of them formatting and the compare-and-swap that keeps it free of locks.  Here the same
   steps, with the same results: the last timestamp issued is kept in module state as two
   str objects; the next is worked out from them, then installed only if they are still the
   ones read.  Under the GIL nothing here lets other code run today -- it allocates only str
   objects, which never start a collection, and never releases the GIL -- so that test
   always holds; it stays so that a change letting code run here (a finalizer that asks for
   a timestamp) could make this one work it out again, never issue one twice or wait.
   Public C API only; no program code runs.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>

typedef struct {
    PyObject *last_base;     /* the last timestamp's whole second, "YYMMDD-HH-MM-SS" */
    PyObject *last_frac;     /* its fraction digits ("" for none) */
    long long cached_second; /* the whole second last formatted, and its text */
    PyObject *cached_base;
} State;

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

static int
clear(PyObject *module)
{
    State *st = PyModule_GetState(module);
    Py_CLEAR(st->last_base);
    Py_CLEAR(st->last_frac);
    Py_CLEAR(st->cached_base);
    return 0;
}

/* The text of ``s``'s first ``n`` characters, or all of it plus "1" (n < 0) */
static PyObject *
frac_of(PyObject *s, Py_ssize_t n)
{
    if (n >= 0)
        return PyUnicode_Substring(s, 0, n);
    return PyUnicode_FromFormat("%U1", s);
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
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
            return PyErr_SetFromErrno(PyExc_OSError);
        now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
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
    char micro[32];
    snprintf(micro, sizeof micro, "%06ld", (long)((now - (double)second) * 1000000.0));
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
        out = PyUnicode_GET_LENGTH(frac) ? PyUnicode_FromFormat("%U.%U", last_base, frac)
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

static PyMethodDef methods[] = {
    {"new_timestamp", (PyCFunction)(void (*)(void))new_timestamp, METH_FASTCALL,
     "new_timestamp(now=None) -> record.new_timestamp's timestamp"},
    {"state", state, METH_NOARGS, "state() -> (base, fraction) of the last timestamp issued"},
    {"set_state", (PyCFunction)(void (*)(void))set_state, METH_FASTCALL,
     "set_state(base, fraction): the last timestamp issued, put back"},
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
    sizeof(State), methods, slots, NULL, clear, NULL,
};

PyMODINIT_FUNC
PyInit__trace_ids(void)
{
    return PyModuleDef_Init(&module_def);
}
