# Compiled declarations of objects.py (pure-Python mode: the source stays plain Python).
cimport cython

@cython.locals(c=cython.Py_UCS4)
cdef bint _no_whitespace(unicode v)
