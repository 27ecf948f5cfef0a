"""build_ext.py -- builds Cython modules against a cymemtrack build tree, for the demo
(make demo-python) and the tests: cython, then the C compiler, nothing else.

Not installed. It never uses setuptools, whose output and flags change from release to
release, and it never writes outside the output directory it is given.

usage: build_ext.py --srcdir DIR --builddir DIR --out DIR [--cc CC] FILE.pyx...
"""

import argparse
import os
import shlex
import subprocess
import sys
import sysconfig


def build(pyx, srcdir, builddir, out, cc="cc"):
    """Compiles pyx into out/NAME<EXT_SUFFIX>, linked with the build tree's
    libcymemtrack-api.so (found again at run time through an rpath). Returns its path;
    raises CalledProcessError with the tool's output on stderr when a step fails."""
    pyx, srcdir, builddir, out = (os.path.abspath(p) for p in (pyx, srcdir, builddir, out))
    name = os.path.splitext(os.path.basename(pyx))[0]
    c_file = os.path.join(out, name + ".c")
    module = os.path.join(out, name + sysconfig.get_config_var("EXT_SUFFIX"))
    # cymemtrack.pxd from the source tree, not from whatever is installed.
    # --line-directives: the debug information, and so the report, name lines of the .pyx.
    subprocess.run([sys.executable, "-m", "cython", "-3", "--line-directives",
                    "-I", os.path.join(srcdir, "python"),
                    "-o", c_file, pyx], check=True)
    libs = os.path.join(builddir, ".libs")
    # -g: reports show file:line in the module; -O1 -fno-builtin: its malloc calls stay as
    # written, so that the counts are the ones the source shows.
    cmd = shlex.split(cc) + [
        "-shared", "-fPIC", "-g", "-O1", "-fno-builtin", "-fno-strict-aliasing",
        "-I" + sysconfig.get_paths()["include"], "-I" + os.path.join(srcdir, "src"),
        c_file, "-o", module, "-L" + libs, "-lcymemtrack-api", "-Wl,-rpath," + libs,
    ]
    # From the .pyx's directory: the #line directives name it relative to there.
    subprocess.run(cmd, check=True, cwd=os.path.dirname(pyx))
    return module


def main():
    p = argparse.ArgumentParser(description="Build Cython modules against a cymemtrack build tree.")
    p.add_argument("--srcdir", required=True)
    p.add_argument("--builddir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cc", default=os.environ.get("CC", "cc"))
    p.add_argument("pyx", nargs="+")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for f in a.pyx:
        try:
            build(f, a.srcdir, a.builddir, a.out, a.cc)
        except subprocess.CalledProcessError as e:
            sys.exit("build_ext.py: %s failed (status %d)" % (e.cmd[0], e.returncode))


if __name__ == "__main__":
    main()
