/*
 * symbolize.c — turns each frame's module and file offset (set by the reader) into a function
 * name, and a source file and line where debug information exists, with elfutils libdwfl,
 * offline: the process is gone, so every module file is opened on its own and queried at the
 * address its file offset maps to. It never guesses: a file whose build-id differs from the
 * one recorded is not used, and what cannot be resolved stays NULL (JSON null).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "render.h"

#ifdef HAVE_LIBDW
#include <elfutils/libdwfl.h>
#include <elfutils/version.h>
#include <gelf.h>

/* One ELF file, opened once for every process and module record that maps it. */
struct sym_file {
    char *path;
    unsigned char *build_id;
    size_t build_id_len;
    Dwfl *dwfl;                 /* NULL when the file cannot be used */
    Dwfl_Module *mod;
    GElf_Addr bias;             /* what dwfl adds to the file's own addresses */
    GElf_Phdr *loads;           /* PT_LOAD headers: file offset -> address */
    size_t nloads;
};

struct cmt_symbolizer {
    struct sym_file *files;
    size_t n, cap;
    /* The last module looked up and its file: consecutive frames mostly share one. Valid
     * within one cmt_symbolize call only (another process's modules may reuse the memory). */
    const struct cmt_module *last_module;
    size_t last_file;
};

/* NULL: elfutils' default, ":.debug:/usr/lib/debug", which is where Debian's -dbgsym
 * packages put .build-id/xx/yyyy.debug files. */
static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

struct cmt_symbolizer *cmt_symbolizer_new(void)
{
    return calloc(1, sizeof(struct cmt_symbolizer));
}

static void sym_file_close(struct sym_file *f)
{
    if (f->dwfl)
        dwfl_end(f->dwfl);
    f->dwfl = NULL;
    f->mod = NULL;
    free(f->loads);
    f->loads = NULL;
    f->nloads = 0;
}

void cmt_symbolizer_free(struct cmt_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        sym_file_close(&s->files[i]);
        free(s->files[i].path);
        free(s->files[i].build_id);
    }
    free(s->files);
    free(s);
}

const char *cmt_symbolizer_version(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "elfutils libdw %s", dwfl_version(NULL));
    return buf;
}

/* Opens path as f's ELF file. Returns 1 when it is usable and its build-id is the expected
 * one (or none was recorded), 0 when it is not there or not ELF, -1 when it is another build
 * of the file. */
static int sym_file_try(struct sym_file *f, const char *path)
{
    f->dwfl = dwfl_begin(&callbacks);
    if (!f->dwfl)
        return 0;
    dwfl_report_begin(f->dwfl);
    /* base 0 with add_p_vaddr: the module sits at the addresses written in the file (bias
     * 0 for a shared object); the bias is read back below rather than assumed. */
    f->mod = dwfl_report_elf(f->dwfl, f->path, path, -1, 0, true);
    dwfl_report_end(f->dwfl, NULL, NULL);
    Elf *elf = f->mod ? dwfl_module_getelf(f->mod, &f->bias) : NULL;
    if (!elf) {
        sym_file_close(f);
        return 0;
    }
    if (f->build_id_len) {
        const unsigned char *bits;
        GElf_Addr vaddr;
        int len = dwfl_module_build_id(f->mod, &bits, &vaddr);
        if (len <= 0 || (size_t)len != f->build_id_len || memcmp(bits, f->build_id, len)) {
            sym_file_close(f);
            return -1;
        }
    }
    size_t phnum;
    if (elf_getphdrnum(elf, &phnum) != 0 || !(f->loads = calloc(phnum + 1, sizeof *f->loads))) {
        sym_file_close(f);
        return 0;
    }
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
            f->loads[f->nloads++] = ph;
    }
    return 1;
}

/* Opens a module's file: the path recorded, or, when that is gone or was rebuilt since the
 * run, the separate debug file that carries the same build-id (it holds the program headers
 * and the full symbol table, which is all that is needed here). */
static void sym_file_open(struct sym_file *f)
{
    if (f->path[0] == '[')      /* [vdso], [vsyscall]: no file */
        return;
    int rc = sym_file_try(f, f->path);
    if (rc == 1 || f->build_id_len == 0)
        return;
    char debug[4096];
    int len = snprintf(debug, sizeof debug, "/usr/lib/debug/.build-id/%02x/", f->build_id[0]);
    for (size_t i = 1; i < f->build_id_len && len > 0 && (size_t)len < sizeof debug - 8; i++)
        len += snprintf(debug + len, sizeof debug - (size_t)len, "%02x", f->build_id[i]);
    if (len > 0 && (size_t)len < sizeof debug - 8) {
        memcpy(debug + len, ".debug", 7);
        if (sym_file_try(f, debug) == 1)
            return;
    }
    if (rc < 0)
        cmt_warning("%s changed since the report was written (its build-id differs): its "
                    "frames are shown as module+offset", f->path);
}

static struct sym_file *sym_file_get(struct cmt_symbolizer *s, const struct cmt_module *m)
{
    if (s->last_module == m)
        return &s->files[s->last_file];
    for (size_t i = 0; i < s->n; i++) {
        struct sym_file *f = &s->files[i];
        if (strcmp(f->path, m->path) == 0 && f->build_id_len == m->build_id_len &&
            (m->build_id_len == 0 || memcmp(f->build_id, m->build_id, m->build_id_len) == 0)) {
            s->last_module = m;
            s->last_file = i;
            return f;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct sym_file *files = realloc(s->files, cap * sizeof *files);
        if (!files)
            return NULL;
        s->files = files;
        s->cap = cap;
    }
    struct sym_file *f = &s->files[s->n];
    memset(f, 0, sizeof *f);
    f->path = strdup(m->path);
    f->build_id = m->build_id_len ? malloc(m->build_id_len) : NULL;
    if (!f->path || (m->build_id_len && !f->build_id)) {
        free(f->path);
        free(f->build_id);
        return NULL;
    }
    if (m->build_id_len)
        memcpy(f->build_id, m->build_id, m->build_id_len);
    f->build_id_len = m->build_id_len;
    s->n++;
    sym_file_open(f);
    s->last_module = m;
    s->last_file = s->n - 1;
    return f;
}

/* The address in f's module that file offset off is loaded at. */
static bool sym_file_address(const struct sym_file *f, uint64_t off, GElf_Addr *addr)
{
    for (size_t i = 0; i < f->nloads; i++) {
        const GElf_Phdr *ph = &f->loads[i];
        if (off >= ph->p_offset && off - ph->p_offset < ph->p_filesz) {
            *addr = f->bias + ph->p_vaddr + (off - ph->p_offset);
            return true;
        }
    }
    return false;
}

static void symbolize_frame(struct cmt_symbolizer *s, struct cmt_frame *fr)
{
    if (!fr->module || !fr->module->path || fr->function)
        return;
    struct sym_file *f = sym_file_get(s, fr->module);
    if (!f || !f->mod)
        return;
    /* Every recorded pc is a return address (the tracker's own frames are skipped, so even
     * the innermost one is the return into the caller of malloc): it points after the call,
     * possibly at the first instruction of the next line or function, so look up pc - 1. */
    GElf_Addr addr;
    if (fr->offset == 0 || !sym_file_address(f, fr->offset - 1, &addr))
        return;
    GElf_Off symoff;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(f->mod, addr, &symoff, &sym, NULL, NULL, NULL);
    /* A full symbol table names versioned symbols "name@@VERSION": the version is no part
     * of the function's name, and suppressions match names. */
    if (name && *name)
        fr->function = strndup(name, strcspn(name, "@"));
    Dwfl_Line *line = dwfl_module_getsrc(f->mod, addr);
    int lineno = 0;
    const char *src = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (src && *src && lineno > 0 && (fr->file = strdup(src)))
        fr->line = lineno;
}

void cmt_symbolize(struct cmt_symbolizer *s, struct cmt_process *p)
{
    if (!s)
        return;
    s->last_module = NULL;
    for (size_t i = 0; i < p->nstacks; i++)
        for (uint32_t j = 0; j < p->stacks[i].depth; j++)
            symbolize_frame(s, &p->stacks[i].frames[j]);
}

#else /* !HAVE_LIBDW: module and offset only, which the reader has already filled in. */

struct cmt_symbolizer {
    int unused;
};

struct cmt_symbolizer *cmt_symbolizer_new(void)
{
    return calloc(1, sizeof(struct cmt_symbolizer));
}

void cmt_symbolize(struct cmt_symbolizer *s, struct cmt_process *p)
{
    (void)s;
    (void)p;
}

void cmt_symbolizer_free(struct cmt_symbolizer *s)
{
    free(s);
}

const char *cmt_symbolizer_version(void)
{
    return "none (built without elfutils libdw: frames show as module+offset)";
}

#endif
