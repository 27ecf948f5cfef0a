# matrix_byhand.pyx -- the sparse-matrix array of cymem's README, with its C structs owned by
# hand: __init__ allocates them with calloc and __dealloc__ frees them one by one.
#
# __dealloc__ forgets one free on purpose (the row table of each matrix): run under cymemtrack
# (make demo-python), the report shows one leaked block per matrix in this array's scope.
# matrix_pool.pyx is the same array with a cymem.Pool, and leaks nothing.

from libc.stdlib cimport calloc, free


cdef struct SparseRow:
    size_t length
    size_t *columns
    double *values


cdef struct SparseMatrix:
    size_t n_rows
    SparseRow *rows


cdef SparseMatrix *matrix_new(list py_matrix) except NULL:
    """One matrix from a list of rows, each row a dict {column: value}."""
    cdef SparseMatrix *m = <SparseMatrix *>calloc(1, sizeof(SparseMatrix))
    if m == NULL:
        raise MemoryError()
    m.n_rows = len(py_matrix)
    m.rows = <SparseRow *>calloc(m.n_rows, sizeof(SparseRow))
    if m.rows == NULL:
        free(m)
        raise MemoryError()
    cdef size_t i, j
    cdef dict py_row
    for i, py_row in enumerate(py_matrix):
        m.rows[i].length = len(py_row)
        m.rows[i].columns = <size_t *>calloc(len(py_row), sizeof(size_t))
        m.rows[i].values = <double *>calloc(len(py_row), sizeof(double))
        if m.rows[i].columns == NULL or m.rows[i].values == NULL:
            raise MemoryError()     # and m leaks: hand-written error paths are hard
        for j, (column, value) in enumerate(sorted(py_row.items())):
            m.rows[i].columns[j] = column
            m.rows[i].values[j] = value
    return m


cdef void matrix_free(SparseMatrix *m):
    cdef size_t i
    for i in range(m.n_rows):
        free(m.rows[i].columns)
        free(m.rows[i].values)
    # The bug this example is about: m.rows is never freed.
    free(m)


cdef class MatrixArray:
    cdef size_t length
    cdef SparseMatrix **matrices

    def __cinit__(self, list py_matrices):
        self.length = 0
        self.matrices = <SparseMatrix **>calloc(len(py_matrices), sizeof(SparseMatrix *))
        if self.matrices == NULL:
            raise MemoryError()

    def __init__(self, list py_matrices):
        for py_matrix in py_matrices:
            self.matrices[self.length] = matrix_new(py_matrix)
            self.length += 1

    def __dealloc__(self):
        cdef size_t i
        for i in range(self.length):
            matrix_free(self.matrices[i])
        free(self.matrices)

    def total(self):
        """The sum of every stored value, to show that both arrays hold the same data."""
        cdef double t = 0
        cdef size_t i, r, j
        for i in range(self.length):
            for r in range(self.matrices[i].n_rows):
                for j in range(self.matrices[i].rows[r].length):
                    t += self.matrices[i].rows[r].values[j]
        return t
