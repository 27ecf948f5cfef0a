# matrix_pool.pyx -- the sparse-matrix array of matrix_byhand.pyx, with every C struct allocated
# from a cymem.Pool that the array owns: the Pool frees them all when the array goes, so there
# is no __dealloc__ to get wrong. Run under cymemtrack (make demo-python), this array's scope
# shows no leak.

from cymem.cymem cimport Pool


cdef struct SparseRow:
    size_t length
    size_t *columns
    double *values


cdef struct SparseMatrix:
    size_t n_rows
    SparseRow *rows


cdef SparseMatrix *matrix_new(Pool mem, list py_matrix) except NULL:
    """One matrix from a list of rows, each row a dict {column: value}."""
    cdef SparseMatrix *m = <SparseMatrix *>mem.alloc(1, sizeof(SparseMatrix))
    m.n_rows = len(py_matrix)
    m.rows = <SparseRow *>mem.alloc(m.n_rows, sizeof(SparseRow))
    cdef size_t i, j
    cdef dict py_row
    for i, py_row in enumerate(py_matrix):
        m.rows[i].length = len(py_row)
        m.rows[i].columns = <size_t *>mem.alloc(len(py_row), sizeof(size_t))
        m.rows[i].values = <double *>mem.alloc(len(py_row), sizeof(double))
        for j, (column, value) in enumerate(sorted(py_row.items())):
            m.rows[i].columns[j] = column
            m.rows[i].values[j] = value
    return m


cdef class MatrixArray:
    cdef Pool mem
    cdef size_t length
    cdef SparseMatrix **matrices

    def __init__(self, list py_matrices):
        self.mem = Pool()
        self.length = len(py_matrices)
        self.matrices = <SparseMatrix **>self.mem.alloc(self.length, sizeof(SparseMatrix *))
        cdef size_t i
        for i, py_matrix in enumerate(py_matrices):
            self.matrices[i] = matrix_new(self.mem, py_matrix)

    def total(self):
        """The sum of every stored value, to show that both arrays hold the same data."""
        cdef double t = 0
        cdef size_t i, r, j
        for i in range(self.length):
            for r in range(self.matrices[i].n_rows):
                for j in range(self.matrices[i].rows[r].length):
                    t += self.matrices[i].rows[r].values[j]
        return t
