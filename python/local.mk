## python: the cymemtrack Python package (ctypes over the preloaded library's API, nothing to
## compile), its Cython declarations, the Cython demo (make demo-python) and the Python suite.
## configure --without-python turns all of it off.

PY_SOURCES = python/cymemtrack/__init__.py
PY_PXD = python/cymemtrack/cymemtrack.pxd
PY_DEMO = examples/cython/matrix_byhand.pyx examples/cython/matrix_pool.pyx
PY_TESTS = tests/python/cases.py tests/python/cyleak.pyx tests/python/report_fields.py
EXTRA_DIST += $(PY_SOURCES) $(PY_PXD) python/build_ext.py $(PY_DEMO) \
	examples/cython/run.py examples/cython/global.supp $(PY_TESTS)

if HAVE_PYTHON
# Into the Python package directory configure chose: $(pkgpythondir) is its cymemtrack/. The
# .pxd goes beside the module, where `from cymemtrack.cymemtrack cimport ...` finds it.
pkgpython_PYTHON = $(PY_SOURCES)
pkgpython_DATA = $(PY_PXD)
dist_man_MANS += man/cymemtrack-python.7

# The demo: the sparse-matrix array of cymem's README freed by hand (one free forgotten) and
# from a cymem.Pool, each in a scope of its own, run under the wrapper with the library just
# built. The interpreter's own leaks, in scope "global", are suppressed from the listing.
PY_RUN_ENV = PYTHONDONTWRITEBYTECODE=1 \
	PYTHONPATH='$(abs_top_srcdir)/python:$(abs_top_builddir)/examples/cython' \
	CYMEMTRACK_LIBRARY='$(abs_top_builddir)/.libs/libcymemtrack.so'
if HAVE_PY_CYTHON
demo-python: libcymemtrack.la libcymemtrack-api.la tools/cymemtrack$(EXEEXT) \
		tools/cymem-report$(EXEEXT)
	PYTHONDONTWRITEBYTECODE=1 $(PYTHON) $(srcdir)/python/build_ext.py \
	  --srcdir '$(abs_top_srcdir)' --builddir '$(abs_top_builddir)' \
	  --out '$(abs_top_builddir)/examples/cython' --cc '$(CC)' \
	  $(srcdir)/examples/cython/matrix_byhand.pyx $(srcdir)/examples/cython/matrix_pool.pyx
	cd examples/cython && $(PY_RUN_ENV) '$(abs_top_builddir)/tools/cymemtrack' \
	  --suppressions '$(abs_top_srcdir)/examples/cython/global.supp' \
	  $(PYTHON) '$(abs_top_srcdir)/examples/cython/run.py'
else
demo-python:
	@echo "demo-python needs Cython and cymem for $(PYTHON) (Debian: cython3 python3-cymem);" \
	  "install them and run configure again" >&2; exit 1
endif
CLEANFILES += examples/cython/*.c examples/cython/*.so

if HAVE_CHECK
# The suite runs tests/python/cases.py with and without the preload, builds tests/python/
# cyleak.pyx when Cython and cymem are there, and drives the wrapper on Python programs.
check_PROGRAMS += tests/check_python
tests_check_python_SOURCES = tests/check_python.c
if HAVE_PY_CYTHON
PY_TEST_CYTHON = 1
else
PY_TEST_CYTHON = 0
endif
tests_check_python_CPPFLAGS = $(TEST_CPPFLAGS) \
	-DCMT_TEST_PYTHON='"$(PYTHON)"' -DCMT_TEST_CYTHON=$(PY_TEST_CYTHON) \
	-DCMT_TEST_CC='"$(CC)"' -DCMT_TEST_SRCDIR='"$(abs_top_srcdir)"' \
	-DCMT_TEST_BUILDDIR='"$(abs_top_builddir)"'
tests_check_python_CFLAGS = $(TEST_CFLAGS)
tests_check_python_LDADD = $(TEST_LDADD)
EXTRA_tests_check_python_DEPENDENCIES = libcymemtrack.la libcymemtrack-api.la \
	tools/cymemtrack$(EXEEXT) tools/cymem-report$(EXEEXT)
endif
else
demo-python:
	@echo "configure found no Python 3 (or was given --without-python)" >&2; exit 1
endif
.PHONY: demo-python
