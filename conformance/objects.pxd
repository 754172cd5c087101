# Compiled declarations of objects.py (pure-Python mode: the source stays plain Python).
cimport cython

@cython.locals(c=cython.Py_UCS4)
cdef bint _no_whitespace(unicode v)

cdef _walk(dict obj, path, ctx, dict fields, dict own, clean_type, tuple must,
           tuple required, tuple counted, dict choice_of, frozenset choice_keys,
           tuple prim_arrays, tuple extras, tuple invariants)
