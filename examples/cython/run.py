"""run.py -- the Cython demo: builds the same sparse-matrix array twice, once with C structs
freed by hand (matrix_byhand.pyx, which forgets one free) and once from a cymem.Pool
(matrix_pool.pyx), each inside a cymemtrack scope of its own.

    make demo-python            # builds both modules and runs this under cymemtrack

The report shows, per "matrix-array" scope, one leaked block per matrix for the array freed
by hand and none for the Pool's. Without the tracker it runs the same and says so.
"""

import cymemtrack
import matrix_byhand
import matrix_pool

N_MATRICES = 3


def matrices():
    """N_MATRICES sparse matrices of 40 rows, each row a dict {column: value}."""
    return [[{(r * 7 + k * 13) % 1000: float(m + r + k) for k in range(1 + r % 5)}
             for r in range(40)]
            for m in range(N_MATRICES)]


def use(cls, data):
    array = cls(data)
    array.total()


def main():
    data = matrices()
    # Once outside any scope, to check that both hold the same data, and so that what the
    # interpreter keeps from a first run (caches, free lists) is not charged to a scope.
    totals = [cls(data).total() for cls in (matrix_byhand.MatrixArray,
                                            matrix_pool.MatrixArray)]
    assert totals[0] == totals[1], totals

    with cymemtrack.scope("matrix-array (freed by hand)"):
        use(matrix_byhand.MatrixArray, data)

    # The same, as a decorator.
    @cymemtrack.scope("matrix-array (cymem.Pool)")
    def pooled():
        use(matrix_pool.MatrixArray, data)
    pooled()

    if cymemtrack.active():
        for name in ("matrix-array (freed by hand)", "matrix-array (cymem.Pool)"):
            st = cymemtrack.stats(name)
            print("%-30s %4d blocks allocated, %d still live when it closed"
                  % (name, st.allocations, st.live_blocks))
    else:
        print("cymemtrack is not preloaded: run this under cymemtrack(1) to see the leak")


if __name__ == "__main__":
    main()
