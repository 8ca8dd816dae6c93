#!/bin/sh
# bench/whole_program.sh: benchmark 2 (whole programs, plain vs under
# pygcprofiler run --stats-only), called by bench/run-all.sh with its temp
# dir; the work is in whole_program.py. Reads GCMON_BUILDDIR, GCMON_SRCDIR,
# GCMON_PYTHON; writes only under the temp dir; asserts no timing.
here=$(cd "$(dirname "$0")" && pwd)
exec "${GCMON_PYTHON:-/usr/bin/python3}" "$here/whole_program.py" "${1:-${TMPDIR:-/tmp}}"
