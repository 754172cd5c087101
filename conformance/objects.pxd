# Compiled declarations of objects.py (pure-Python mode: the source stays plain Python).
cimport cython

cdef class _Table:
    cdef dict fields, own, choice_of
    cdef tuple must, required, counted, prim_arrays, extras, invariants
    cdef frozenset choice_keys

@cython.locals(fields=dict, own=dict)
cdef _walk(dict obj, path, ctx, _Table table)

@cython.locals(c=cython.Py_UCS4)
cdef bint _no_whitespace(unicode v)

cdef bint _no_vt_ff(unicode v)

cdef class _Single:
    cdef str dotkey
    cdef object item, targets

cdef _single(_Single single, value, path, ctx)

cdef class _Array:
    cdef str dotkey
    cdef object item, targets
    cdef double mx
    cdef bint skip_none

cdef _array(_Array array, list values, path, ctx)
