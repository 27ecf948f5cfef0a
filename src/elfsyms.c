/*
 * elfsyms.c — finding functions by name in the loaded modules, and noticing new modules.
 *
 * Owns the walk over the loader's module list (dl_iterate_phdr): each module's dynamic symbol
 * table as it is mapped, and .symtab read from the module's file (mapped read-only, unmapped
 * before returning), so that static functions are found too; and the watch on the loader's
 * debugger hook that tells envscope.c a module was added. Never allocates (mmap only), never
 * uses stdio, never searches the tracker's own shared library.
 */
#define _GNU_SOURCE     /* dl_iterate_phdr */
#include "config.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmt.h"

#if __SIZEOF_POINTER__ == 8
#define ELF_CLASS ELFCLASS64
#else
#define ELF_CLASS ELFCLASS32
#endif

/* Provided by envscope.c in the library; weak, so that a test linking this file alone (or a
 * library built before envscope.c existed) still links. */
extern void cmt_envscope_module_loaded(void) __attribute__((weak));

/* What a walk looks for, and what it found. */
enum want { WANT_FUNC, WANT_OBJECT, WANT_SIZE_AT, WANT_PROT_AT };

struct search {
    enum want want;
    const char *name;           /* WANT_FUNC, WANT_OBJECT */
    uintptr_t at;               /* WANT_SIZE_AT, WANT_PROT_AT */
    bool dynamic_only;          /* the next definition after ours, as interposition finds it */
    bool skip_main;
    /* results */
    bool found;
    uintptr_t addr;
    size_t size;
    int prot;
};

/* Symbols whose value is a function, or an IFUNC resolver. */
static bool is_func_type(unsigned type)
{
    return type == STT_FUNC || type == STT_GNU_IFUNC;
}

/* Is the NUL-terminated string at str[off], within a table of strsz bytes, want? */
static bool name_is(const char *str, size_t strsz, size_t off, const char *want)
{
    size_t n = strlen(want);
    return off < strsz && strsz - off > n && memcmp(str + off, want, n) == 0 &&
           str[off + n] == '\0';
}

/* ---- one module's segments ----------------------------------------------------------- */

/* The PT_LOAD segment of the module that holds a, or NULL. */
static const ElfW(Phdr) *segment_of(const struct dl_phdr_info *info, uintptr_t a)
{
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && a >= lo && a - lo < ph->p_memsz)
            return ph;
    }
    return NULL;
}

/* A symbol's address is only believed when it lands in the module's code. */
static bool in_code(const struct dl_phdr_info *info, uintptr_t a)
{
    const ElfW(Phdr) *ph = segment_of(info, a);
    return ph && (ph->p_flags & PF_X);
}

static bool is_self(const struct dl_phdr_info *info)
{
    return segment_of(info, (uintptr_t)&segment_of) != NULL;
}

/* ---- IFUNC --------------------------------------------------------------------------- */

/* An IFUNC symbol's value is a resolver that picks the implementation for this CPU. It is
 * called the way the loader calls it: on x86-64, with no arguments (glibc's
 * elf_ifunc_invoke); the result is the implementation the program's calls reach. Elsewhere
 * the calling convention differs, so IFUNCs are not resolved and count as absent. */
static uintptr_t resolve_ifunc(uintptr_t resolver)
{
#if defined(__x86_64__)
    return ((uintptr_t (*)(void))resolver)();
#else
    (void)resolver;
    return 0;
#endif
}

/* ---- the dynamic symbol table, in memory --------------------------------------------- */

struct dyn {
    const ElfW(Sym) *sym;
    const char *str;
    size_t strsz;
    const uint32_t *hash;       /* DT_HASH */
    const uint32_t *gnu_hash;   /* DT_GNU_HASH */
    const ElfW(Half) *versym;   /* DT_VERSYM */
};

/* The loader relocates most modules' dynamic entries in place; the vDSO's stay as link-time
 * addresses. A pointer below the load bias cannot be relocated yet. */
static uintptr_t dyn_ptr(uintptr_t v, uintptr_t bias)
{
    return (bias && v < bias) ? v + bias : v;
}

static bool dyn_read(const struct dl_phdr_info *info, struct dyn *d)
{
    memset(d, 0, sizeof *d);
    const ElfW(Dyn) *dyn = NULL;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn)
        return false;
    uintptr_t bias = info->dlpi_addr;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: d->sym = (const ElfW(Sym) *)dyn_ptr(dyn->d_un.d_ptr, bias); break;
        case DT_STRTAB: d->str = (const char *)dyn_ptr(dyn->d_un.d_ptr, bias); break;
        case DT_STRSZ: d->strsz = dyn->d_un.d_val; break;
        case DT_HASH: d->hash = (const uint32_t *)dyn_ptr(dyn->d_un.d_ptr, bias); break;
        case DT_GNU_HASH: d->gnu_hash = (const uint32_t *)dyn_ptr(dyn->d_un.d_ptr, bias); break;
        case DT_VERSYM: d->versym = (const ElfW(Half) *)dyn_ptr(dyn->d_un.d_ptr, bias); break;
        case DT_SYMENT:
            if (dyn->d_un.d_val != sizeof(ElfW(Sym)))
                return false;
            break;
        default: break;
        }
    }
    return d->sym && d->str && d->strsz;
}

/* The number of dynamic symbols: DT_HASH says it; with only DT_GNU_HASH, it is one past the
 * last chain's end. */
static size_t dyn_count(const struct dyn *d)
{
    if (d->hash)
        return d->hash[1];
    if (!d->gnu_hash) {
        /* No table says: the symbol table usually ends where the string table starts. */
        if ((const char *)d->sym < d->str)
            return (size_t)(d->str - (const char *)d->sym) / sizeof(ElfW(Sym));
        return 0;
    }
    uint32_t nbuckets = d->gnu_hash[0], symoffset = d->gnu_hash[1];
    uint32_t bloom_size = d->gnu_hash[2];
    const uint32_t *buckets = d->gnu_hash + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t last = 0;
    for (uint32_t b = 0; b < nbuckets; b++)
        if (buckets[b] > last)
            last = buckets[b];
    if (last < symoffset)
        return symoffset;
    while (!(chain[last - symoffset] & 1))
        last++;
    return (size_t)last + 1;
}

static uint32_t gnu_hash_of(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static uint32_t elf_hash_of(const char *s)
{
    uint32_t h = 0;
    for (; *s; s++) {
        h = (h << 4) + (unsigned char)*s;
        uint32_t g = h & 0xf0000000u;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    return h;
}

/* Does dynamic symbol i match the search? A default version beats a hidden (older) one. */
static void dyn_consider(const struct dl_phdr_info *info, const struct dyn *d, uint32_t i,
                         struct search *s, bool *hidden_found)
{
    const ElfW(Sym) *sym = &d->sym[i];
    unsigned type = ELF64_ST_TYPE(sym->st_info);
    if (sym->st_shndx == SHN_UNDEF || !name_is(d->str, d->strsz, sym->st_name, s->name))
        return;
    if (s->want == WANT_FUNC ? !is_func_type(type) : type != STT_OBJECT)
        return;
    bool hidden = d->versym && (d->versym[i] & 0x8000);
    if (s->found && (hidden || !*hidden_found))
        return;
    uintptr_t a = info->dlpi_addr + sym->st_value;
    if (s->want == WANT_FUNC && !in_code(info, a))
        return;
    s->found = true;
    *hidden_found = hidden;
    s->addr = a;
    s->size = sym->st_size;
    if (type == STT_GNU_IFUNC) {
        s->addr = resolve_ifunc(a);
        s->size = 0;    /* the resolver's size says nothing of the implementation's */
        s->found = s->addr != 0;
    }
}

/* Looks s->name up through the module's hash table. */
static void dyn_lookup(const struct dl_phdr_info *info, const struct dyn *d, struct search *s)
{
    bool hidden = false;
    if (d->gnu_hash) {
        uint32_t nbuckets = d->gnu_hash[0], symoffset = d->gnu_hash[1];
        uint32_t bloom_size = d->gnu_hash[2];
        if (!nbuckets)
            return;
        const uint32_t *buckets = d->gnu_hash + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
        const uint32_t *chain = buckets + nbuckets;
        uint32_t h = gnu_hash_of(s->name);
        uint32_t i = buckets[h % nbuckets];
        if (i < symoffset)
            return;
        for (;; i++) {
            uint32_t c = chain[i - symoffset];
            if ((c | 1) == (h | 1))
                dyn_consider(info, d, i, s, &hidden);
            if (c & 1)
                break;
        }
    } else if (d->hash) {
        uint32_t nbucket = d->hash[0], nchain = d->hash[1];
        if (!nbucket)
            return;
        const uint32_t *bucket = d->hash + 2, *chain = bucket + nbucket;
        for (uint32_t i = bucket[elf_hash_of(s->name) % nbucket]; i && i < nchain; i = chain[i])
            dyn_consider(info, d, i, s, &hidden);
    } else {
        size_t n = dyn_count(d);
        for (size_t i = 1; i < n; i++)
            dyn_consider(info, d, (uint32_t)i, s, &hidden);
    }
}

/* The largest size of a function symbol that starts at s->at. */
static void consider_size(const ElfW(Sym) *sym, uintptr_t bias, struct search *s)
{
    if (sym->st_shndx != SHN_UNDEF && is_func_type(ELF64_ST_TYPE(sym->st_info)) &&
        bias + sym->st_value == s->at && sym->st_size > s->size) {
        s->found = true;
        s->size = sym->st_size;
    }
}

/* ---- .symtab, from the file on disk -------------------------------------------------- */

struct file_map {
    const unsigned char *base;
    size_t size;
};

/* Maps the module's file when it is the one in memory: same program headers. */
static bool file_open(const struct dl_phdr_info *info, struct file_map *f)
{
    const char *path = info->dlpi_name;
    if (!path || !*path)
        path = "/proc/self/exe";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size >= sizeof(ElfW(Ehdr)))
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return false;
    f->base = p;
    f->size = (size_t)st.st_size;
    const ElfW(Ehdr) *eh = p;
    size_t phsize = (size_t)info->dlpi_phnum * sizeof(ElfW(Phdr));
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELF_CLASS &&
        eh->e_phentsize == sizeof(ElfW(Phdr)) && eh->e_phnum == info->dlpi_phnum &&
        eh->e_phoff <= f->size && phsize <= f->size - eh->e_phoff &&
        memcmp(f->base + eh->e_phoff, info->dlpi_phdr, phsize) == 0)
        return true;
    munmap(p, f->size);
    return false;
}

/* Scans .symtab. For a name, a global or weak definition beats a local one, and among local
 * ones (static functions of the same name in several files) the first wins. */
static void file_scan(const struct dl_phdr_info *info, const struct file_map *f,
                      struct search *s)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)f->base;
    if (eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff > f->size ||
        (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > f->size - eh->e_shoff)
        return;
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(f->base + eh->e_shoff);
    for (unsigned k = 0; k < eh->e_shnum; k++) {
        if (sh[k].sh_type != SHT_SYMTAB || sh[k].sh_entsize != sizeof(ElfW(Sym)) ||
            sh[k].sh_link >= eh->e_shnum)
            continue;
        const ElfW(Shdr) *strh = &sh[sh[k].sh_link];
        if (sh[k].sh_offset > f->size || sh[k].sh_size > f->size - sh[k].sh_offset ||
            strh->sh_offset > f->size || strh->sh_size > f->size - strh->sh_offset)
            continue;
        const ElfW(Sym) *sym = (const ElfW(Sym) *)(f->base + sh[k].sh_offset);
        size_t n = sh[k].sh_size / sizeof(ElfW(Sym));
        const char *str = (const char *)f->base + strh->sh_offset;
        size_t strsz = strh->sh_size;
        bool global_found = false;
        for (size_t i = 1; i < n; i++) {
            if (s->want == WANT_SIZE_AT) {
                consider_size(&sym[i], info->dlpi_addr, s);
                continue;
            }
            unsigned type = ELF64_ST_TYPE(sym[i].st_info);
            if (sym[i].st_shndx == SHN_UNDEF || !is_func_type(type) ||
                !name_is(str, strsz, sym[i].st_name, s->name))
                continue;
            bool global = ELF64_ST_BIND(sym[i].st_info) != STB_LOCAL;
            if (s->found && (global_found || !global))
                continue;
            uintptr_t a = info->dlpi_addr + sym[i].st_value;
            if (!in_code(info, a))
                continue;
            if (type == STT_GNU_IFUNC && !(a = resolve_ifunc(a)))
                continue;
            s->found = true;
            global_found = global;
            s->addr = a;
            s->size = type == STT_GNU_IFUNC ? 0 : sym[i].st_size;
        }
    }
}

/* ---- the walk ------------------------------------------------------------------------ */

static int visit(struct dl_phdr_info *info, size_t info_size, void *arg)
{
    (void)info_size;
    struct search *s = arg;
    bool main_program = !info->dlpi_name || !*info->dlpi_name;
    if (s->want == WANT_SIZE_AT || s->want == WANT_PROT_AT) {
        const ElfW(Phdr) *ph = segment_of(info, s->at);
        if (!ph)
            return 0;
        if (s->want == WANT_PROT_AT) {
            s->found = true;
            s->prot = ((ph->p_flags & PF_R) ? PROT_READ : 0) |
                      ((ph->p_flags & PF_W) ? PROT_WRITE : 0) |
                      ((ph->p_flags & PF_X) ? PROT_EXEC : 0);
            return 1;
        }
        struct dyn d;
        if (dyn_read(info, &d)) {
            size_t n = dyn_count(&d);
            for (size_t i = 1; i < n; i++)
                consider_size(&d.sym[i], info->dlpi_addr, s);
        }
        struct file_map f;
        if (file_open(info, &f)) {
            file_scan(info, &f, s);
            munmap((void *)f.base, f.size);
        }
        return 1;
    }
    /* The tracker's own functions are never the ones asked for, and hooking them would
     * recurse. Linked into a test program, this code is part of the program, which must
     * still be searched; for the next definition, though, it is skipped all the same. */
    if (is_self(info) && (!main_program || s->dynamic_only))
        return 0;
    if (s->skip_main && main_program)
        return 0;
    struct dyn d;
    if (dyn_read(info, &d))
        dyn_lookup(info, &d, s);
    if (s->found)
        return 1;
    if (s->dynamic_only || s->want != WANT_FUNC)
        return 0;
    struct file_map f;
    if (file_open(info, &f)) {
        file_scan(info, &f, s);
        munmap((void *)f.base, f.size);
    }
    return s->found;
}

void *cmt_elfsyms_find(const char *symbol, size_t *size)
{
    struct search s = { .want = WANT_FUNC, .name = symbol };
    if (symbol && *symbol)
        dl_iterate_phdr(visit, &s);
    if (size)
        *size = s.found ? s.size : 0;
    return s.found ? (void *)s.addr : NULL;
}

void *cmt_elfsyms_next(const char *symbol)
{
    struct search s = { .want = WANT_FUNC, .name = symbol, .dynamic_only = true };
    dl_iterate_phdr(visit, &s);
    return s.found ? (void *)s.addr : NULL;
}

size_t cmt_elfsyms_func_size(const void *addr)
{
    struct search s = { .want = WANT_SIZE_AT, .at = (uintptr_t)addr };
    dl_iterate_phdr(visit, &s);
    return s.size;
}

int cmt_elfsyms_prot(const void *addr)
{
    struct search s = { .want = WANT_PROT_AT, .at = (uintptr_t)addr, .prot = -1 };
    dl_iterate_phdr(visit, &s);
    return s.found ? s.prot : -1;
}

/* ---- the watch on the loader --------------------------------------------------------- */

/* The loader calls r_debug.r_brk (_dl_debug_state) for debuggers each time the module list
 * starts or finishes changing, with its own lock held, after mapping the new modules and
 * before relocating them or running their constructors. An entry hook there is how a new
 * module is noticed before any of its code runs, whoever loaded it (dlopen from any caller,
 * dlmopen, glibc's own NSS and iconv modules). Interposing dlopen instead would make the
 * loader see the tracker as dlopen's caller and search the tracker's RUNPATH rather than
 * the caller's, a change in the program's behaviour. */
static struct {
    unsigned long long adds;    /* dlpi_adds when modules were last announced */
    bool armed;
} watch;

static int read_adds(struct dl_phdr_info *info, size_t info_size, void *arg)
{
    if (info_size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds)
        *(unsigned long long *)arg = info->dlpi_adds;
    return 1;
}

/* The executable's DT_DEBUG entry, which the loader fills in with &_r_debug. */
static int main_debug(struct dl_phdr_info *info, size_t info_size, void *arg)
{
    (void)info_size;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
            continue;
        const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        for (; d->d_tag != DT_NULL; d++)
            if (d->d_tag == DT_DEBUG)
                *(const struct r_debug **)arg = (const struct r_debug *)d->d_un.d_ptr;
    }
    return 1;   /* the executable comes first */
}

static void loader_event(void *arg)
{
    (void)arg;
    unsigned long long adds = 0;
    dl_iterate_phdr(read_adds, &adds);
    if (adds == watch.adds)
        return;     /* a removal, or the start of a change not finished yet */
    watch.adds = adds;
    if (cmt_envscope_module_loaded)
        cmt_envscope_module_loaded();
}

int cmt_elfsyms_watch_loads(const char **why)
{
    if (watch.armed)
        return 0;
    /* _r_debug is ld.so's; the executable's DT_DEBUG points at the same structure. */
    struct search s = { .want = WANT_OBJECT, .name = "_r_debug", .dynamic_only = true };
    dl_iterate_phdr(visit, &s);
    const struct r_debug *r = s.found ? (const struct r_debug *)s.addr : NULL;
    if (!r)
        dl_iterate_phdr(main_debug, &r);
    if (!r || !r->r_brk) {
        *why = "the loader's debugger interface (r_debug) was not found";
        return -1;
    }
    dl_iterate_phdr(read_adds, &watch.adds);
    if (cmt_funchook_install_notify((void *)r->r_brk, loader_event, NULL, why) != 0)
        return -1;
    watch.armed = true;
    return 0;
}
