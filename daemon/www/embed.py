# embed.py: compiles daemon/www/*'s files into gcmond (www_files.c, the
# http_files table of daemon/out/http.h), so the dashboard is served with no
# file to find at run time. Run by make: embed.py OUT FILE...
import os
import sys

TYPES = {".html": "text/html; charset=utf-8",
         ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8",
         ".txt": "text/plain; charset=utf-8"}

out, files = sys.argv[1], sys.argv[2:]
lines = ['#include "config.h"', "#include <stddef.h>", '#include "http.h"']
rows = []
for i, f in enumerate(files):
    data = open(f, "rb").read()
    name = os.path.basename(f)
    body = ",".join(str(b) for b in data)
    lines.append("static const unsigned char www_%d[] = {%s,0};" % (i, body))
    rows.append('\t{ "/%s", "%s", www_%d, %d },' % (
        name, TYPES[os.path.splitext(name)[1]], i, len(data)))
lines.append("const struct http_file http_files[] = {")
lines += rows
lines.append("};")
lines.append("const size_t http_nfiles = %d;" % len(files))
with open(out + ".tmp", "w") as fh:
    fh.write("\n".join(lines) + "\n")
os.replace(out + ".tmp", out)
