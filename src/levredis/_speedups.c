/*
 * levredis._speedups: the optional compiled fast paths of the RESP2 parser,
 * of the encoder (see "The encoder's fast path" below), of large values
 * (Gather) and of cache hits.
 *
 * parse(data, start, decode, error_type, big) reads as many complete replies
 * as data[start:] holds and returns ([value, ...], type bytes, end, status):
 * the i-th reply's type byte is types[i].
 * It is stateless: it never keeps part of a reply. It checks exactly what the
 * pure parser in _resp.py checks, and where it would have to refuse a reply,
 * or meets one it leaves to the pure parser (nesting deeper than MAX_DEPTH, a
 * large bulk string still arriving), it stops *before* that reply with status
 * HAND_OVER: the pure parser then reads from `end`, raising the precise error
 * or parsing the reply. So no value ever comes out of a broken stream here,
 * and the two parsers can only differ in speed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <string.h>

#define MAX_BULK (512LL * 1024 * 1024)
#define MAX_ARRAY 4294967295LL
#define MAX_HEADER 64
#define MAX_DEPTH 64

enum { DONE = 0, NEED_MORE = 1, HAND_OVER = 2, FAILED = 3 };

typedef struct {
    const char *buf;
    Py_ssize_t len;
    Py_ssize_t pos;
    int decode;
    PyObject *error_type;
    Py_ssize_t big;
} Reader;

/* Index of the "\r" of the first CRLF at or after pos, or -1. */
static Py_ssize_t
find_crlf(const char *buf, Py_ssize_t pos, Py_ssize_t len)
{
    while (pos < len - 1) {
        const char *cr = memchr(buf + pos, '\r', (size_t)(len - 1 - pos));
        if (cr == NULL) {
            return -1;
        }
        Py_ssize_t at = cr - buf;
        if (buf[at + 1] == '\n') {
            return at;
        }
        pos = at + 1;
    }
    return -1;
}

/* An optional minus, then 1 to 19 ASCII digits, within signed 64 bits. */
static int
parse_integer(const char *text, Py_ssize_t size, long long *out)
{
    Py_ssize_t at = 0;
    int negative = 0;
    if (size > 0 && text[0] == '-') {
        negative = 1;
        at = 1;
    }
    if (size - at < 1 || size - at > 19) {
        return -1;
    }
    unsigned long long value = 0;
    for (; at < size; at++) {
        char digit = text[at];
        if (digit < '0' || digit > '9') {
            return -1;
        }
        value = value * 10 + (unsigned long long)(digit - '0');
    }
    if (negative) {
        if (value > 9223372036854775808ULL) {
            return -1;
        }
        *out = value == 9223372036854775808ULL ? LLONG_MIN : -(long long)value;
    }
    else {
        if (value > 9223372036854775807ULL) {
            return -1;
        }
        *out = (long long)value;
    }
    return 0;
}

static PyObject *
text_value(Reader *reader, const char *start, Py_ssize_t size)
{
    if (reader->decode) {
        return PyUnicode_DecodeUTF8(start, size, "surrogateescape");
    }
    return PyBytes_FromStringAndSize(start, size);
}

static int
parse_reply(Reader *reader, int depth, PyObject **out)
{
    const char *buf = reader->buf;
    Py_ssize_t pos = reader->pos;
    if (pos >= reader->len) {
        return NEED_MORE;
    }
    char type = buf[pos];
    Py_ssize_t eol = find_crlf(buf, pos, reader->len);
    if (eol < 0) {
        /* The pure parser's checks of a line still arriving. */
        if (type == '$' || type == '*' || type == ':') {
            return reader->len - pos > MAX_HEADER ? HAND_OVER : NEED_MORE;
        }
        return (type == '+' || type == '-') ? NEED_MORE : HAND_OVER;
    }
    const char *line = buf + pos + 1;
    Py_ssize_t size = eol - pos - 1;
    Py_ssize_t next = eol + 2;
    long long number;
    PyObject *value;

    switch (type) {
    case '+':
        value = text_value(reader, line, size);
        break;
    case '-': {
        PyObject *text = PyUnicode_DecodeUTF8(line, size, "surrogateescape");
        if (text == NULL) {
            return FAILED;
        }
        value = PyObject_CallOneArg(reader->error_type, text);
        Py_DECREF(text);
        break;
    }
    case ':':
        if (parse_integer(line, size, &number) < 0) {
            return HAND_OVER;
        }
        value = PyLong_FromLongLong(number);
        break;
    case '$':
        if (parse_integer(line, size, &number) < 0 || number < -1 || number > MAX_BULK) {
            return HAND_OVER;
        }
        if (number == -1) {
            value = Py_NewRef(Py_None);
            break;
        }
        if (next + number + 2 > reader->len) {
            return number > reader->big ? HAND_OVER : NEED_MORE;
        }
        if (buf[next + number] != '\r' || buf[next + number + 1] != '\n') {
            return HAND_OVER;
        }
        value = text_value(reader, buf + next, (Py_ssize_t)number);
        next += (Py_ssize_t)number + 2;
        break;
    case '*': {
        if (parse_integer(line, size, &number) < 0 || number < -1 || number > MAX_ARRAY) {
            return HAND_OVER;
        }
        if (number == -1) {
            value = Py_NewRef(Py_None);
            break;
        }
        if (number > 0 && depth >= MAX_DEPTH) {
            return HAND_OVER;
        }
        /* Every element takes at least 3 bytes: reserve nothing for an
           announced count the received bytes cannot hold yet. */
        if (number > (reader->len - next) / 3) {
            return NEED_MORE;
        }
        PyObject *items = PyList_New((Py_ssize_t)number);
        if (items == NULL) {
            return FAILED;
        }
        reader->pos = next;
        for (Py_ssize_t index = 0; index < (Py_ssize_t)number; index++) {
            PyObject *item;
            int status = parse_reply(reader, depth + 1, &item);
            if (status != DONE) {
                Py_DECREF(items);
                return status;
            }
            PyList_SET_ITEM(items, index, item);
        }
        *out = items;
        return DONE;
    }
    default:
        return HAND_OVER;
    }
    if (value == NULL) {
        return FAILED;
    }
    reader->pos = next;
    *out = value;
    return DONE;
}

static PyObject *
parse(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "parse(data, start, decode, error_type, big)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t big = PyLong_AsSsize_t(args[4]);
    int decode = PyObject_IsTrue(args[2]);
    if (PyErr_Occurred() || decode < 0 || start < 0 || start > view.len) {
        PyBuffer_Release(&view);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "start out of range");
        }
        return NULL;
    }
    Reader reader = {view.buf, view.len, start, decode, args[3], big};
    PyObject *replies = PyList_New(0);
    /* Each reply's type byte, in a bytes object beside the values. */
    char small[256];
    char *kinds = small;
    Py_ssize_t kinds_size = (Py_ssize_t)sizeof(small);
    Py_ssize_t count = 0;
    int status = NEED_MORE;
    while (replies != NULL) {
        Py_ssize_t begin = reader.pos;
        PyObject *value = NULL;
        status = parse_reply(&reader, 0, &value);
        if (status != DONE) {
            reader.pos = begin;
            if (status == FAILED) {
                Py_CLEAR(replies);
            }
            break;
        }
        if (count == kinds_size) {
            Py_ssize_t grown = 2 * kinds_size;
            char *more = kinds == small ? PyMem_Malloc((size_t)grown)
                                        : PyMem_Realloc(kinds, (size_t)grown);
            if (more == NULL) {
                Py_DECREF(value);
                Py_CLEAR(replies);
                PyErr_NoMemory();
                break;
            }
            if (kinds == small) {
                memcpy(more, small, sizeof(small));
            }
            kinds = more;
            kinds_size = grown;
        }
        kinds[count++] = reader.buf[begin];
        int failed = PyList_Append(replies, value);
        Py_DECREF(value);
        if (failed < 0) {
            Py_CLEAR(replies);
            break;
        }
    }
    PyBuffer_Release(&view);
    PyObject *types = replies == NULL ? NULL : PyBytes_FromStringAndSize(kinds, count);
    if (kinds != small) {
        PyMem_Free(kinds);
    }
    if (types == NULL) {
        Py_XDECREF(replies);
        return NULL;
    }
    return Py_BuildValue("(NNni)", replies, types, reader.pos, status);
}

/* The client-side cache's fast path: are a command's arguments all exactly
   str or bytes (so that Python's == on them is the wire's)? */
static PyObject *
plain_args(PyObject *self, PyObject *args)
{
    if (!PyTuple_CheckExact(args)) {
        Py_RETURN_FALSE;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(args);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(args, i);
        if (!PyUnicode_CheckExact(item) && !PyBytes_CheckExact(item)) {
            Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

/* ---- The encoder's fast path ------------------------------------------------
 * encode(args) and encode_many(commands) write RESP arrays of bulk strings for
 * the arguments the wire takes as they are: exactly str with ASCII text,
 * exactly bytes, exactly int within 64 bits. Anything else (a float, a
 * subclass, bytearray, non-ASCII text, a bool, None, a malformed pipeline)
 * makes them return None *before* writing anything, and the pure encoder in
 * _resp.py does the whole command (or pipeline), converting it or naming the
 * argument it refuses. Two passes: the exact size, then one allocation filled
 * in place; nothing runs Python code in between. */

/* The decimal text of v into out (at least 20 bytes); its length. */
static Py_ssize_t
format_integer(long long v, char *out)
{
    char digits[24];
    Py_ssize_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    Py_ssize_t size = 0;
    if (v < 0) {
        out[size++] = '-';
    }
    while (n) {
        out[size++] = digits[--n];
    }
    return size;
}

static Py_ssize_t
decimal_size(unsigned long long u)
{
    Py_ssize_t n = 1;
    while (u >= 10) {
        u /= 10;
        n++;
    }
    return n;
}

/* The wire size of one argument ("$<len>\r\n<data>\r\n"), or -1 when the
   pure encoder must take the command. */
static Py_ssize_t
argument_size(PyObject *item)
{
    Py_ssize_t length;
    if (PyUnicode_CheckExact(item)) {
#if PY_VERSION_HEX < 0x030C0000
        /* 3.11 may still hold a str made through the legacy API, not "ready". */
        if (PyUnicode_READY(item) < 0) {
            PyErr_Clear();
            return -1;
        }
#endif
        if (!PyUnicode_IS_ASCII(item)) {
            return -1;
        }
        length = PyUnicode_GET_LENGTH(item);
    }
    else if (PyBytes_CheckExact(item)) {
        length = PyBytes_GET_SIZE(item);
    }
    else if (PyLong_CheckExact(item)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return -1;
        }
        unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        length = decimal_size(u) + (v < 0);
    }
    else {
        return -1;
    }
    return 1 + decimal_size((unsigned long long)length) + 2 + length + 2;
}

/* The wire size of one command, or -1 (pure encoder). */
static Py_ssize_t
command_size(PyObject *command)
{
    if (!PyList_CheckExact(command) && !PyTuple_CheckExact(command)) {
        return -1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(command);
    if (count == 0) {
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(command);
    Py_ssize_t total = 1 + decimal_size((unsigned long long)count) + 2;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t size = argument_size(items[i]);
        if (size < 0 || size > PY_SSIZE_T_MAX - total) {
            return -1;
        }
        total += size;
    }
    return total;
}

static char *
write_header(char *out, char mark, Py_ssize_t n)
{
    *out++ = mark;
    out += format_integer((long long)n, out);
    *out++ = '\r';
    *out++ = '\n';
    return out;
}

/* Writes a command command_size() accepted. */
static char *
write_command(char *out, PyObject *command)
{
    Py_ssize_t count = PySequence_Fast_GET_SIZE(command);
    PyObject **items = PySequence_Fast_ITEMS(command);
    out = write_header(out, '*', count);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = items[i];
        if (PyLong_CheckExact(item)) {
            char text[24];
            Py_ssize_t size = format_integer(PyLong_AsLongLong(item), text);
            out = write_header(out, '$', size);
            memcpy(out, text, (size_t)size);
            out += size;
        }
        else {
            const char *data;
            Py_ssize_t size;
            if (PyBytes_CheckExact(item)) {
                data = PyBytes_AS_STRING(item);
                size = PyBytes_GET_SIZE(item);
            }
            else {
                data = (const char *)PyUnicode_DATA(item);
                size = PyUnicode_GET_LENGTH(item);
            }
            out = write_header(out, '$', size);
            memcpy(out, data, (size_t)size);
            out += size;
        }
        *out++ = '\r';
        *out++ = '\n';
    }
    return out;
}

static PyObject *
encode(PyObject *self, PyObject *command)
{
    Py_ssize_t size = command_size(command);
    if (size < 0) {
        Py_RETURN_NONE;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    if (data != NULL) {
        write_command(PyBytes_AS_STRING(data), command);
    }
    return data;
}

/* encode_many(commands) -> (bytes, [tuple, ...]) or None. The commands are
   first copied into tuples (a list's items as they are now; tuples as they
   are), and the bytes are written from those copies, which are returned: what
   the caller plans from is exactly what was encoded, whatever happens to its
   lists afterwards. */
static PyObject *
encode_many(PyObject *self, PyObject *commands)
{
    if (!PyList_CheckExact(commands) && !PyTuple_CheckExact(commands)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(commands);
    PyObject *taken = PyList_New(count);
    if (taken == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i >= PySequence_Fast_GET_SIZE(commands)) {  /* shrunk meanwhile (a finalizer) */
            Py_DECREF(taken);
            Py_RETURN_NONE;
        }
        PyObject *command = PySequence_Fast_GET_ITEM(commands, i);
        PyObject *copy;
        if (PyTuple_CheckExact(command)) {
            Py_INCREF(command);
            copy = command;
        }
        else if (PyList_CheckExact(command)) {
            Py_INCREF(command);
            copy = PyList_AsTuple(command);
            Py_DECREF(command);
            if (copy == NULL) {
                Py_DECREF(taken);
                return NULL;
            }
        }
        else {
            Py_DECREF(taken);
            Py_RETURN_NONE;
        }
        PyList_SET_ITEM(taken, i, copy);
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t size = command_size(PyList_GET_ITEM(taken, i));
        if (size < 0 || size > PY_SSIZE_T_MAX - total) {
            Py_DECREF(taken);
            Py_RETURN_NONE;
        }
        total += size;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, total);
    if (data == NULL) {
        Py_DECREF(taken);
        return NULL;
    }
    char *out = PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < count; i++) {
        out = write_command(out, PyList_GET_ITEM(taken, i));
    }
    return Py_BuildValue("(NN)", data, taken);
}

/* ---- Gather: a large bulk string received straight into its bytes object ---
 * Gather(total) takes the `total` bytes of a bulk string's data plus its CRLF,
 * piece by piece as they arrive (add(piece) -> how many bytes of it it took),
 * into one bytes object that finish() returns, so a 100 MiB value is copied
 * once and never held twice. The buffer is reserved as data arrives, never
 * from the announced length alone: at most GATHER_FIRST or twice what has
 * arrived, whichever is more, and it grows by realloc (on Linux a large block
 * is moved by remapping its pages, not by copying them). The pure twin is
 * _resp.Pieces; tests/unit/test_gather.py holds the two to the same answers. */

#define GATHER_FIRST (2 * 1024 * 1024)

typedef struct {
    PyObject_HEAD
    PyObject *data;       /* the value being filled (NULL until the first byte) */
    Py_ssize_t size;      /* bytes in it so far */
    Py_ssize_t capacity;  /* its allocated size */
    Py_ssize_t total;     /* the data plus CRLF */
} Gather;

static int
Gather_init(Gather *self, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t total;
    if (!PyArg_ParseTuple(args, "n:Gather", &total)) {
        return -1;
    }
    if (total < 2) {
        PyErr_SetString(PyExc_ValueError, "Gather(total): total is the data plus CRLF, >= 2");
        return -1;
    }
    Py_CLEAR(self->data);
    self->size = 0;
    self->capacity = 0;
    self->total = total;
    return 0;
}

static void
Gather_dealloc(Gather *self)
{
    Py_XDECREF(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Gather_add(Gather *self, PyObject *piece)
{
    Py_buffer view;
    if (PyObject_GetBuffer(piece, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t need = self->total - self->size;
    Py_ssize_t take = view.len < need ? view.len : need;
    if (take > 0 && self->size + take > self->capacity) {
        Py_ssize_t want = 2 * (self->size + take);
        if (want < GATHER_FIRST) {
            want = GATHER_FIRST;
        }
        if (want > self->total) {
            want = self->total;
        }
        if (self->data == NULL) {
            self->data = PyBytes_FromStringAndSize(NULL, want);
        }
        else {
            (void)_PyBytes_Resize(&self->data, want);  /* NULL on failure */
        }
        if (self->data == NULL) {
            self->size = self->capacity = self->total = 0;  /* unusable: finish() refuses */
            PyBuffer_Release(&view);
            return NULL;
        }
        self->capacity = want;
    }
    if (take > 0) {
        memcpy(PyBytes_AS_STRING(self->data) + self->size, view.buf, (size_t)take);
        self->size += take;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(take);
}

static PyObject *
Gather_finish(Gather *self, PyObject *unused)
{
    if (self->data == NULL || self->size != self->total) {
        PyErr_SetString(PyExc_ValueError, "finish() before the whole value arrived");
        return NULL;
    }
    const char *end = PyBytes_AS_STRING(self->data) + self->total - 2;
    Py_ssize_t size = self->size;
    self->size = self->capacity = self->total = 0;  /* done: need 0, add() takes nothing */
    if (end[0] != '\r' || end[1] != '\n') {
        Py_CLEAR(self->data);
        Py_RETURN_NONE;  /* not followed by CRLF: the caller names the error */
    }
    PyObject *data = self->data;
    self->data = NULL;
    if (_PyBytes_Resize(&data, size - 2) < 0) {
        return NULL;
    }
    return data;
}

static PyObject *
Gather_need(Gather *self, void *closure)
{
    return PyLong_FromSsize_t(self->total - self->size);
}

static PyMethodDef Gather_methods[] = {
    {"add", (PyCFunction)Gather_add, METH_O,
     "add(piece) -> how many of its bytes belong to the value (and its CRLF)"},
    {"finish", (PyCFunction)Gather_finish, METH_NOARGS,
     "finish() -> the value as bytes, or None when its CRLF is missing"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Gather_getset[] = {
    {"need", (getter)Gather_need, NULL, "bytes still due (the CRLF included)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject GatherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "levredis._speedups.Gather",
    .tp_basicsize = sizeof(Gather),
    .tp_dealloc = (destructor)Gather_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A large bulk string's data and CRLF, gathered into one bytes object.",
    .tp_methods = Gather_methods,
    .tp_getset = Gather_getset,
    .tp_init = (initproc)Gather_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef methods[] = {
    {"parse", (PyCFunction)(void (*)(void))parse, METH_FASTCALL,
     "parse(data, start, decode, error_type, big) -> (values, type bytes, end, status)"},
    {"encode", encode, METH_O,
     "encode(args) -> the command as RESP bytes, or None: the pure encoder must do it"},
    {"encode_many", encode_many, METH_O,
     "encode_many(commands) -> (RESP bytes, the commands as tuples), or None: the pure "
     "encoder must"},
    {"plain_args", plain_args, METH_O,
     "plain_args(args) -> whether every item of the tuple is exactly str or bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "levredis._speedups",
    "The optional compiled fast paths of levredis' RESP2 parser, encoder and cache hits.",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *created = PyModule_Create(&module);
    if (created == NULL) {
        return NULL;
    }
    if (PyType_Ready(&GatherType) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    Py_INCREF(&GatherType);
    if (PyModule_AddObject(created, "Gather", (PyObject *)&GatherType) < 0) {
        Py_DECREF(&GatherType);
        Py_DECREF(created);
        return NULL;
    }
    if (PyModule_AddIntConstant(created, "NEED_MORE", NEED_MORE) < 0
        || PyModule_AddIntConstant(created, "HAND_OVER", HAND_OVER) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
