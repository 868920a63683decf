/*
 * graph_writer.c — the graph's writer: loads over messages
 * (GraphLoadRequest, protos/llmos/graph.proto), on its own pinned thread.
 *
 * LMDB has many readers and one writer.  The graph actor (graph_actor.c)
 * answers queries on its thread and forwards every load here, so a load that
 * runs for minutes never holds a query up; loads run one after another
 * because this actor handles one message at a time (and graph_load_* holds
 * LMDB's writer lock, which also orders it after an outside llmos-graph load).
 *
 * A load is a session named by load_id: chunks are appended to spool files
 * (unlinked temporary files in the store's directory, one per input file),
 * and the commit message loads every file of the session with
 * graph_load_streams — ONE transaction, so a refused (strict) or failed load
 * leaves the store exactly as it was.  Chunk offsets are checked so a lost
 * or repeated chunk cannot load a corrupted file; any error drops the
 * session.  Sessions idle for 5 minutes are dropped when the next message
 * comes; at most 16 are open at once.
 *
 * Shutdown waits for a running load to finish (the runtime joins a pinned
 * actor after its current receive); the uncommitted load is then simply
 * not there.
 */
#include "actors/graph_internal.h"

#include "graph/load.h"
#include "llmos/graph.pb-c.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SESSIONS_MAX 16
#define SESSION_FILES_MAX 64
#define SESSION_ID_MAX 64
#define SESSION_IDLE_NS (300ull * 1000000000ull)
#define DIAG_MAX 50 /* malformed lines listed in a reply */
#define LOAD_BUDGET (256ull << 20) /* a load's sort buffers and term cache (graph_load_options) */

typedef struct load_file {
    char *name;          /* owned: the client's name for it */
    char *path;          /* owned: a file on this node, or NULL (spooled) */
    FILE *f;             /* owned: the spool (unlinked), or NULL */
    uint64_t size;       /* bytes spooled */
    graph_format format; /* AUTO = from the name */
} load_file_t;

typedef struct load_session {
    int used;
    char id[SESSION_ID_MAX + 1];
    load_file_t files[SESSION_FILES_MAX];
    int nfiles;
    uint64_t received;
    uint64_t last_ns;
} load_session_t;

typedef struct graph_writer_actor {
    graph_shared_t *sh;
    load_session_t s[SESSIONS_MAX];
} graph_writer_actor_t;

static void session_drop(load_session_t *s) {
    for (int i = 0; i < s->nfiles; i++) {
        free(s->files[i].name);
        free(s->files[i].path);
        if (s->files[i].f) fclose(s->files[i].f);
    }
    memset(s, 0, sizeof *s);
}

static int writer_init(rt_ctx_t *ctx, void *arg, void **state) {
    (void)ctx;
    graph_writer_actor_t *w = calloc(1, sizeof *w);
    if (!w) {
        graph_shared_release(arg);
        return LLMOS_ENOMEM;
    }
    w->sh = arg;
    *state = w;
    return 0;
}

static void writer_deinit(rt_ctx_t *ctx, void *state) {
    (void)ctx;
    graph_writer_actor_t *w = state;
    for (int i = 0; i < SESSIONS_MAX; i++)
        session_drop(&w->s[i]);
    graph_shared_release(w->sh);
    free(w);
}

/* The session named id (created when new); idle ones are dropped first. */
static int session_get(graph_writer_actor_t *w, const char *id, load_session_t **out, llmos_error_t *err) {
    uint64_t now = llmos_now_ns();
    load_session_t *free_slot = NULL;
    for (int i = 0; i < SESSIONS_MAX; i++) {
        load_session_t *s = &w->s[i];
        if (s->used && now - s->last_ns > SESSION_IDLE_NS) {
            LLMOS_WARN("graph: load '%s' dropped after 5 minutes without a message", s->id);
            session_drop(s);
        }
        if (s->used && strcmp(s->id, id) == 0) {
            s->last_ns = now;
            *out = s;
            return 0;
        }
        if (!s->used && !free_slot) free_slot = s;
    }
    if (!free_slot)
        return llmos_error_set(err, LLMOS_EOVERLOADED, "load: %d loads are already open; retry later",
                               SESSIONS_MAX);
    free_slot->used = 1;
    snprintf(free_slot->id, sizeof free_slot->id, "%s", id);
    free_slot->last_ns = now;
    *out = free_slot;
    return 0;
}

static int format_of(const char *name, graph_format *out, llmos_error_t *err) {
    *out = GRAPH_FORMAT_AUTO;
    if (!name || !name[0]) return 0;
    return graph_format_parse(name, out, err);
}

/* Starts a new file in the session: a server-side path, or a spool. */
static int file_start(graph_writer_actor_t *w, load_session_t *s, const Llmos__GraphLoadRequest *q,
                      llmos_error_t *err) {
    if (s->nfiles == SESSION_FILES_MAX)
        return llmos_error_set(err, LLMOS_ETOOBIG, "load: more than %d files in one load", SESSION_FILES_MAX);
    load_file_t *f = &s->files[s->nfiles];
    memset(f, 0, sizeof *f);
    int rc = format_of(q->format, &f->format, err);
    if (rc) return llmos_error_prefix(err, "load: ");
    const char *name = q->name && q->name[0] ? q->name : q->path && q->path[0] ? q->path : "(data)";
    if (!(f->name = strdup(name))) return llmos_error_set(err, LLMOS_ENOMEM, "load: no memory");
    if (q->path && q->path[0]) {
        if (!(f->path = strdup(q->path))) rc = llmos_error_set(err, LLMOS_ENOMEM, "load: no memory");
    } else {
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/.load-XXXXXX", graph_store_path(w->sh->store));
        int fd = mkstemp(tmpl);
        if (fd < 0) {
            rc = llmos_error_set(err, llmos_err_from_errno(errno), "load: spool file in %s: %s",
                                 graph_store_path(w->sh->store), strerror(errno));
        } else {
            unlink(tmpl); /* gone with the descriptor, whatever happens */
            if (!(f->f = fdopen(fd, "w+b"))) {
                close(fd);
                rc = llmos_error_set(err, LLMOS_ENOMEM, "load: no memory for a spool file");
            }
        }
    }
    if (rc) {
        free(f->name);
        free(f->path);
        memset(f, 0, sizeof *f);
        return rc;
    }
    s->nfiles++;
    return 0;
}

/* Adds what one request carries to its session: file index nfiles starts
 * the next file (a path, or a spool), nfiles - 1 continues the current one. */
static int session_add(graph_writer_actor_t *w, load_session_t *s, const Llmos__GraphLoadRequest *q,
                       llmos_error_t *err) {
    int has_path = q->path && q->path[0], has_data = q->data.len > 0;
    if (has_path && has_data)
        return llmos_error_set(err, LLMOS_EINVAL, "load: a request has data or a path, not both");
    if (!has_path && !has_data && !(q->name && q->name[0])) return 0; /* a bare commit */
    int started = 0;
    if (q->file == (uint32_t)s->nfiles) {
        int rc = file_start(w, s, q, err);
        if (rc) return rc;
        started = 1;
    } else if (q->file + 1 != (uint32_t)s->nfiles) {
        return llmos_error_set(err, LLMOS_EINVAL,
                               "load: file index %u, expected %d (a message was lost or repeated)", q->file,
                               s->nfiles);
    }
    load_file_t *f = &s->files[q->file];
    if (has_path || f->path) {
        if (started) return 0;
        return llmos_error_set(err, LLMOS_EINVAL, "load: file %u: a path is one message, it takes no chunks",
                               q->file);
    }
    if (q->offset != f->size)
        return llmos_error_set(err, LLMOS_EINVAL,
                               "load: %s: chunk at offset %llu, expected %llu (a chunk was lost or repeated)",
                               f->name, (unsigned long long)q->offset, (unsigned long long)f->size);
    if (has_data && fwrite(q->data.data, 1, q->data.len, f->f) != q->data.len)
        return llmos_error_set(err, LLMOS_EIO, "load: %s: writing the spool: %s", f->name, strerror(errno));
    f->size += q->data.len;
    s->received += q->data.len;
    return 0;
}

/* Loads every file of the session in one transaction and answers. */
static int session_commit(graph_writer_actor_t *w, rt_ctx_t *ctx, const rt_msg_t *msg, load_session_t *s,
                          const Llmos__GraphLoadRequest *q, llmos_error_t *err) {
    graph_load_source_t src[SESSION_FILES_MAX];
    FILE *opened[SESSION_FILES_MAX] = {0};
    char *diag = NULL;
    size_t diag_len = 0;
    int rc = 0;
    for (int i = 0; i < s->nfiles && !rc; i++) {
        load_file_t *f = &s->files[i];
        src[i] = (graph_load_source_t){.f = f->f, .name = f->name, .format = f->format, .size = f->size};
        if (f->path) {
            if (!(opened[i] = fopen(f->path, "rb"))) {
                rc = llmos_error_set(err, llmos_err_from_errno(errno), "load: %s: %s", f->path,
                                     strerror(errno));
                break;
            }
            src[i].f = opened[i];
            if (fseek(opened[i], 0, SEEK_END) == 0) src[i].size = (uint64_t)ftell(opened[i]);
            rewind(opened[i]);
        } else if (fflush(f->f) != 0 || fseek(f->f, 0, SEEK_SET) != 0) {
            rc = llmos_error_set(err, LLMOS_EIO, "load: %s: reading the spool back: %s", f->name,
                                 strerror(errno));
        }
    }
    FILE *df = rc ? NULL : open_memstream(&diag, &diag_len);
    if (!rc && !df) rc = llmos_error_set(err, LLMOS_ENOMEM, "load: no memory for diagnostics");
    graph_load_options_t o = {.strict = q->strict,
                              .base = q->base_iri && q->base_iri[0] ? q->base_iri : NULL,
                              .quiet = 1,
                              .diag = df,
                              .max_diag = DIAG_MAX,
                              .mem_budget = LOAD_BUDGET};
    graph_load_report_t rep = {0};
    if (!rc) {
        uint64_t t0 = llmos_now_ns();
        LLMOS_INFO("graph: load '%s' started (%d files, %llu bytes sent)", s->id, s->nfiles,
                   (unsigned long long)s->received);
        rc = graph_load_streams(w->sh->store, src, s->nfiles, &o, &rep, err);
        LLMOS_INFO("graph: load '%s' (%d files, %llu bytes sent): %s, %llu new triples, %llu malformed "
                   "lines, %.2f s",
                   s->id, s->nfiles, (unsigned long long)s->received, rc ? "refused" : "committed",
                   (unsigned long long)rep.added, (unsigned long long)rep.errors,
                   (double)(llmos_now_ns() - t0) / 1e9);
    }
    if (df) fclose(df);
    for (int i = 0; i < s->nfiles; i++)
        if (opened[i]) fclose(opened[i]);
    if (!rc) {
        Llmos__GraphLoadResult res = LLMOS__GRAPH_LOAD_RESULT__INIT;
        res.received = s->received;
        res.committed = 1;
        res.lines = rep.lines;
        res.read = rep.read;
        res.added = rep.added;
        res.errors = rep.errors;
        res.terms_added = rep.terms_added;
        res.diagnostics = diag ? diag : "";
        res.seconds = rep.seconds;
        graph_reply_packed(ctx, msg, &res.base);
    }
    free(diag);
    return rc;
}

static int handle_load(graph_writer_actor_t *w, rt_ctx_t *ctx, const rt_msg_t *msg, llmos_error_t *err) {
    Llmos__GraphLoadRequest *q = llmos__graph_load_request__unpack(NULL, msg->len, msg->data);
    if (!q)
        return llmos_error_set(err, LLMOS_EFORMAT, "load: the payload (%zu bytes) is not a GraphLoadRequest",
                               msg->len);
    int rc = 0;
    load_session_t *s = NULL;
    const char *id = q->load_id ? q->load_id : "";
    if (!w->sh->writable)
        rc = llmos_error_set(err, LLMOS_EPERM, "load: the node opened %s read-only",
                             graph_store_path(w->sh->store));
    else if (strlen(id) > SESSION_ID_MAX)
        rc = llmos_error_set(err, LLMOS_EINVAL, "load: load_id longer than %d bytes", SESSION_ID_MAX);
    else if (!id[0] && !q->commit)
        rc = llmos_error_set(err, LLMOS_EINVAL, "load: a load in several messages needs a load_id");
    if (!rc) rc = session_get(w, id, &s, err);
    if (!rc) rc = session_add(w, s, q, err);
    if (!rc && q->commit) {
        if (!s->nfiles)
            rc = llmos_error_set(err, LLMOS_EINVAL, "load: nothing to load (no data and no path)");
        if (!rc) rc = session_commit(w, ctx, msg, s, q, err);
        session_drop(s);
    } else if (!rc) {
        Llmos__GraphLoadResult res = LLMOS__GRAPH_LOAD_RESULT__INIT;
        res.received = s->received;
        graph_reply_packed(ctx, msg, &res.base);
    } else if (s) {
        session_drop(s); /* a broken load never half-loads later */
    }
    llmos__graph_load_request__free_unpacked(q, NULL);
    return rc;
}

static int writer_receive(rt_ctx_t *ctx, void *state, rt_msg_t *msg) {
    graph_writer_actor_t *w = state;
    if (msg->flags & RT_MSG_REPLY) return 0;
    if (msg->type != LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LOAD) return LLMOS_EUNKNOWNTYPE;
    llmos_error_t err = {0};
    int rc = handle_load(w, ctx, msg, &err);
    if (rc) rt_reply_error(ctx, msg, rc, "%s", err.msg[0] ? err.msg : llmos_strerror(rc));
    return 0;
}

const rt_actor_def_t graph_writer_def = {"graph-writer", writer_init, writer_receive, writer_deinit, NULL};
