#!/bin/sh
# embed.sh — turns the page's source files (tools/html/) into C strings for cymem-report:
# for each FILE given, `const char cmt_html_NAME[]` holding its text, NAME being the file's
# base name with '.' and '-' as '_'. Only sed: no xxd, nothing fetched. Backslashes, double
# quotes and question marks (no trigraph may form) are escaped; every line keeps its newline.
set -e
for f in "$@"; do
    name=cmt_html_$(basename "$f" | tr '.-' '__')
    printf 'extern const char %s[];\nconst char %s[] =\n' "$name" "$name"
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/    "/' -e 's/$/\\n"/' "$f"
    printf '    "";\n\n'
done
