/*
 * con_static.c -- the console's files (web/) at /console/, and the strict
 * headers every console and /api/ reply carries.
 *
 * The files are read once, when the worker starts and again on SIGHUP, into
 * one table sorted by name; a request is answered from memory.  A URL names
 * a file only by an exact match in that table, so no request can reach a
 * file that was not loaded, whatever its dots, escapes or slashes: the path
 * check below refuses those early only to answer them 400 instead of 404
 * and say so in the log.  Loading takes regular files only (no symbolic
 * links, nothing whose name starts with a dot, a closed set of extensions,
 * limits on depth, count and size), so what an operator drops beside the
 * pages (an editor's backup, a .git folder) is never served.
 *
 * Each file has a strong ETag (BLAKE2b of its bytes): browsers revalidate
 * with If-None-Match and get 304 without a body.  The file names carry no
 * version (there is no build step), hence "Cache-Control: no-cache": a
 * browser keeps the file but asks before each use, so a new release is
 * seen at once and costs one small round trip per file when unchanged.
 *
 * Why in memory: the whole of web/ is well under a megabyte, and a copy per
 * worker costs less than the open/read/close of every request
 * (bench/RESULTS.md, "console static files").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "console/con_int.h"
#include "gateway/gw.h"
#include "gateway/gw_assert.h"

#define CON_STATIC_MAGIC 0x5a71c0f1u

/* What is loaded, at most. */
#define CON_FILES_MAX      512
#define CON_FILE_BYTES_MAX (2u << 20)  /* one file */
#define CON_ALL_BYTES_MAX  (16u << 20) /* all of them */
#define CON_DEPTH_MAX      4           /* folders below the web dir */

const char con_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'";

struct con_file {
    char *name; /* "index.html", "js/app.js": relative, '/'-separated */
    char *body;
    size_t len;
    const char *ctype; /* static string */
    char etag[36];     /* "\"" + 32 hex digits + "\"" */
};

struct con_files {
    struct con_file *f; /* sorted by name */
    size_t n, bytes;
};

struct con_static {
    unsigned magic;
    char dir[GW_STR_MAX]; /* "" when no web dir is configured */
    struct con_files files;
};

/* The extensions served, with their Content-Type; anything else in web/
 * stays on disk. */
static const struct {
    const char *ext, *ctype;
} con_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
    {"webmanifest", "application/manifest+json"},
};

static const char *
con_ctype_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL) return NULL;
    for (size_t i = 0; i < sizeof(con_types) / sizeof(con_types[0]); i++)
        if (strcmp(dot + 1, con_types[i].ext) == 0) return con_types[i].ctype;
    return NULL;
}

/* ------------------------------------------------------------------------
 * Pure parts (fuzzed: tests/fuzz/fuzz_con_static.c)
 */

/* A name as loading makes them and as a URL may ask for one: segments of
 * [A-Za-z0-9_.-], none empty or starting with '.', joined by '/'. */
static int
con_name_ok(const char *s, size_t len)
{
    int seg_start = 1;

    if (len == 0 || len >= GW_STR_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/') {
            if (seg_start) return 0; /* "//" or a leading '/' */
            seg_start = 1;
            continue;
        }
        if (seg_start && c == '.') return 0; /* ".", "..", ".git" */
        seg_start = 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return !seg_start; /* no trailing '/' */
}

const char *
con_static_path(const char *path, size_t len, char *name, size_t cap)
{
    static const char prefix[] = "/console/";
    const size_t plen = sizeof(prefix) - 1;

    AN(cap > 16);
    if (len < plen || memcmp(path, prefix, plen) != 0)
        return "not under /console/";
    path += plen;
    len -= plen;
    if (len == 0) {
        snprintf(name, cap, "index.html");
        return NULL;
    }
    if (len >= cap) return "path too long";
    if (memchr(path, '%', len) != NULL) return "escapes are not served";
    if (!con_name_ok(path, len)) return "bad path";
    memcpy(name, path, len);
    name[len] = '\0';
    return NULL;
}

int
con_etag_match(const char *inm, size_t len, const char *etag)
{
    size_t elen = strlen(etag);
    size_t i = 0;

    while (i < len) {
        size_t start;
        while (i < len && (inm[i] == ' ' || inm[i] == '\t' || inm[i] == ','))
            i++;
        if (i == len) break;
        if (inm[i] == '*') {
            /* "*" alone matches any current representation */
            i++;
            while (i < len && (inm[i] == ' ' || inm[i] == '\t'))
                i++;
            if (i == len || inm[i] == ',') return 1;
        } else {
            /* RFC 9110's weak comparison: a "W/" in front is ignored */
            if (len - i >= 2 && inm[i] == 'W' && inm[i + 1] == '/') i += 2;
            start = i;
            if (i < len && inm[i] == '"') {
                i++;
                while (i < len && inm[i] != '"')
                    i++;
                if (i == len) return 0; /* unterminated: no match */
                i++;
                if (i - start == elen && memcmp(inm + start, etag, elen) == 0)
                    return 1;
            }
        }
        while (i < len && inm[i] != ',')
            i++; /* the rest of this item */
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Loading
 */

static void
con_files_free(struct con_files *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        free(fs->f[i].name);
        free(fs->f[i].body);
    }
    free(fs->f);
    memset(fs, 0, sizeof(*fs));
}

static int
con_file_cmp(const void *a, const void *b)
{
    const struct con_file *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Read the regular file name (relative to dirfd) into a new entry called
 * rel.  Returns 0, or -1 with why set. */
static int
con_file_read(struct con_files *fs, int dirfd, const char *name,
              const char *rel, const char *ctype, const char **why)
{
    struct con_file *f;
    struct stat st;
    unsigned char h[16];
    size_t got = 0;
    int fd;

    if (fs->n == CON_FILES_MAX) {
        *why = "too many files";
        return -1;
    }
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = "cannot read a file";
        if (fd >= 0) close(fd);
        return -1;
    }
    if ((size_t)st.st_size > CON_FILE_BYTES_MAX ||
        fs->bytes + (size_t)st.st_size > CON_ALL_BYTES_MAX) {
        *why = "a file, or all of them, over the size limit";
        close(fd);
        return -1;
    }
    if (fs->n % 64 == 0) {
        struct con_file *nf = realloc(fs->f, (fs->n + 64) * sizeof(*nf));
        if (nf == NULL) {
            *why = "out of memory";
            close(fd);
            return -1;
        }
        fs->f = nf;
    }
    f = &fs->f[fs->n];
    memset(f, 0, sizeof(*f));
    f->name = strdup(rel);
    f->body = malloc((size_t)st.st_size + 1);
    if (f->name == NULL || f->body == NULL) {
        free(f->name);
        free(f->body);
        *why = "out of memory";
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, f->body + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(f->name);
        free(f->body);
        *why = "a file changed while it was read";
        return -1;
    }
    f->len = got;
    f->ctype = ctype;
    crypto_generichash(h, sizeof(h), (const unsigned char *)f->body, f->len,
                       NULL, 0);
    f->etag[0] = '"';
    sodium_bin2hex(f->etag + 1, sizeof(f->etag) - 2, h, sizeof(h));
    f->etag[33] = '"';
    f->etag[34] = '\0';
    fs->n++;
    fs->bytes += got;
    return 0;
}

/* Load the folder dirfd (which it closes), whose files are named prefix +
 * entry name.  Returns 0, or -1 with why set. */
static int
con_dir_load(struct con_files *fs, int dirfd, const char *prefix, int depth,
             const char *dir, const char **why)
{
    DIR *d = fdopendir(dirfd);
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        close(dirfd);
        *why = "cannot read a folder";
        return -1;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char rel[GW_STR_MAX];
        struct stat st;
        const char *ctype;
        int n;

        if (e->d_name[0] == '.') continue; /* ., .., dotfiles */
        n = snprintf(rel, sizeof(rel), "%s%s", prefix, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(rel) || !con_name_ok(rel, (size_t)n)) {
            GW_LOG_DEBUG(0, "console file skipped (name) dir=%s name=%.64s",
                         dir, e->d_name);
            continue;
        }
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            *why = "cannot stat a file";
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            int sub;
            if (depth == CON_DEPTH_MAX) {
                *why = "folders nested too deep";
                rc = -1;
                break;
            }
            sub = openat(dirfd, e->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 || (size_t)n + 1 >= sizeof(rel)) {
                if (sub >= 0) close(sub);
                *why = "cannot open a folder";
                rc = -1;
                break;
            }
            rel[n] = '/';
            rel[n + 1] = '\0';
            rc = con_dir_load(fs, sub, rel, depth + 1, dir, why);
        } else if (S_ISREG(st.st_mode) && (ctype = con_ctype_of(rel))) {
            rc = con_file_read(fs, dirfd, e->d_name, rel, ctype, why);
        } else {
            GW_LOG_DEBUG(0, "console file skipped (kind) dir=%s name=%s", dir,
                         rel);
        }
    }
    closedir(d);
    return rc;
}

/* Load dir into fs (empty on entry).  Returns 0, or -1 (logged) with fs
 * empty. */
static int
con_files_load(struct con_files *fs, const char *dir)
{
    const char *why = NULL;
    struct timespec t0, t1;
    int fd;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        GW_LOG_WARN(errno, "console files not loaded dir=%s", dir);
        return -1;
    }
    if (con_dir_load(fs, fd, "", 0, dir, &why) != 0) {
        GW_LOG_WARN(0, "console files not loaded dir=%s why=\"%s\"", dir, why);
        con_files_free(fs);
        return -1;
    }
    if (fs->n > 0) qsort(fs->f, fs->n, sizeof(fs->f[0]), con_file_cmp);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    GW_LOG_INFO(0, "console files loaded dir=%s files=%zu bytes=%zu ms=%.3f",
                dir, fs->n, fs->bytes,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return 0;
}

static const struct con_file *
con_files_find(const struct con_files *fs, const char *name)
{
    struct con_file key = {.name = (char *)(uintptr_t)name};
    if (fs->n == 0) return NULL;
    return bsearch(&key, fs->f, fs->n, sizeof(fs->f[0]), con_file_cmp);
}

/* ------------------------------------------------------------------------
 * Replies
 */

void
con_headers_add(struct gw_req *r)
{
    gw_req_header_add(r, "Content-Security-Policy", con_csp);
    gw_req_header_add(r, "X-Content-Type-Options", "nosniff");
    gw_req_header_add(r, "Referrer-Policy", "no-referrer");
    gw_req_header_add(r, "X-Frame-Options", "DENY");
    gw_req_header_add(r, "Cross-Origin-Opener-Policy", "same-origin");
    gw_req_header_add(r, "Cross-Origin-Resource-Policy", "same-origin");
}

static void
con_static_handle(struct gw_req *r)
{
    struct con_static *st = gw_req_route_arg(r);
    const char *path = gw_req_path(r), *why, *inm;
    const struct con_file *f;
    char name[GW_STR_MAX];

    GW_CHECK_MAGIC(st, CON_STATIC_MAGIC);
    con_headers_add(r);
    why = con_static_path(path, strlen(path), name, sizeof(name));
    if (why != NULL) {
        gw_reply_error(r, 400, why);
        return;
    }
    f = con_files_find(&st->files, name);
    if (f == NULL) {
        gw_reply_error(r, 404, "not found");
        return;
    }
    gw_req_header_add(r, "ETag", f->etag);
    gw_req_header_add(r, "Cache-Control", "no-cache");
    inm = gw_req_header(r, "If-None-Match");
    if (inm != NULL && con_etag_match(inm, strlen(inm), f->etag)) {
        gw_reply(r, 304, NULL, NULL, 0);
        return;
    }
    gw_reply(r, 200, f->ctype, f->body, f->len);
}

/* GET /console: the pages live under /console/. */
static void
con_static_redirect(struct gw_req *r)
{
    static const char body[] = "see /console/\n";

    con_headers_add(r);
    gw_req_header_add(r, "Location", "/console/");
    gw_reply(r, 301, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

static int
con_static_reload(struct gw_server *srv, void *arg)
{
    struct con_static *st = arg;
    struct con_files fresh = {0};

    (void)srv;
    GW_CHECK_MAGIC(st, CON_STATIC_MAGIC);
    if (st->dir[0] == '\0') return 0;
    if (con_files_load(&fresh, st->dir) != 0) return -1; /* keep the old */
    con_files_free(&st->files);
    st->files = fresh;
    return 0;
}

/* The file server of each server of this process (a worker has one; the
 * tests may run several). */
#define CON_STATIC_SERVERS 64
static struct {
    struct gw_server *srv;
    struct con_static *st;
} con_static_of[CON_STATIC_SERVERS];

static void
con_static_free(struct con_static *st)
{
    if (st == NULL) return;
    GW_CHECK_MAGIC(st, CON_STATIC_MAGIC);
    con_files_free(&st->files);
    st->magic = 0;
    free(st);
}

int
con_static_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct con_static *st;
    struct gw_route page = {
        .path = "/console/",
        .prefix = 1,
        .methods = GW_METHOD_GET | GW_METHOD_HEAD,
        .endpoint = "console",
        .handler = con_static_handle,
    };
    struct gw_route bare = {
        .path = "/console",
        .methods = GW_METHOD_GET | GW_METHOD_HEAD,
        .endpoint = "console",
        .handler = con_static_redirect,
    };
    int slot = -1;

    for (int i = 0; i < CON_STATIC_SERVERS && slot < 0; i++)
        if (con_static_of[i].srv == NULL) slot = i;
    if (slot < 0 || (st = calloc(1, sizeof(*st))) == NULL) {
        GW_LOG_ERROR(0, "console files: no room for another server");
        return -1;
    }
    st->magic = CON_STATIC_MAGIC;
    snprintf(st->dir, sizeof(st->dir), "%s", cfg->web_dir);
    /* A missing folder is not fatal: the phones' side runs without the
     * console's pages, which then answer 404 (the log says why). */
    if (st->dir[0] != '\0') (void)con_files_load(&st->files, st->dir);
    con_static_of[slot].srv = srv;
    con_static_of[slot].st = st;
    page.arg = st;
    bare.arg = st;
    if (gw_server_route(srv, &page) != 0 || gw_server_route(srv, &bare) != 0 ||
        gw_server_on_reload(srv, con_static_reload, st) != 0)
        return -1; /* freed by con_static_fini() */
    return 0;
}

void
con_static_fini(struct gw_server *srv)
{
    for (int i = 0; i < CON_STATIC_SERVERS; i++)
        if (con_static_of[i].srv == srv) {
            con_static_free(con_static_of[i].st);
            con_static_of[i].srv = NULL;
            con_static_of[i].st = NULL;
        }
}
