/* tasks.c — see tasks.h. */
#include "jobs/tasks.h"

#include "llmos/graph.pb-c.h"
#include "llmos/model.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define PACK(type, msgp, bufp, lenp)                                      \
    do {                                                                  \
        *(lenp) = llmos__##type##__get_packed_size(msgp);                 \
        *(bufp) = malloc(*(lenp) ? *(lenp) : 1);                          \
        if (*(bufp)) llmos__##type##__pack((msgp), *(bufp));              \
    } while (0)

bool jobs_task_input_is_context(const Llmos__Task *t) { return t->kind == LLMOS__TASK_KIND__TASK_GENERATE; }

int jobs_task_request(const Llmos__Task *t, const char *input, const char *request_id, uint32_t *type, uint8_t **buf,
                      size_t *len, llmos_error_t *err) {
    *buf = NULL;
    *len = 0;
    *type = 0;
    switch (t->kind) {
    case LLMOS__TASK_KIND__TASK_ECHO: {
        Llmos__EchoTask e = LLMOS__ECHO_TASK__INIT;
        e.text = (char *)input;
        PACK(echo_task, &e, buf, len);
        *type = LLMOS__JOB_MSG_TYPE__JOB_MSG_ECHO;
        break;
    }
    case LLMOS__TASK_KIND__TASK_GENERATE: {
        Llmos__GenerateRequest g = LLMOS__GENERATE_REQUEST__INIT;
        g.prompt = t->text;
        g.context = (char *)input;
        g.max_tokens = t->max_tokens;
        g.sampling = t->sampling;
        g.n_stop = t->n_stop;
        g.stop = t->stop;
        /* Always streamed: a client may start streaming the job after this
         * task started; chunks nobody streams are dropped early. */
        g.stream = true;
        g.request_id = (char *)request_id;
        PACK(generate_request, &g, buf, len);
        *type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_GENERATE;
        break;
    }
    case LLMOS__TASK_KIND__TASK_CLASSIFY: {
        Llmos__ScoreRequest q = LLMOS__SCORE_REQUEST__INIT;
        q.prompt = (char *)input;
        q.n_labels = t->n_labels;
        q.labels = t->labels;
        PACK(score_request, &q, buf, len);
        *type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_SCORE;
        break;
    }
    case LLMOS__TASK_KIND__TASK_EMBED: {
        Llmos__EmbedRequest q = LLMOS__EMBED_REQUEST__INIT;
        q.text = (char *)input;
        PACK(embed_request, &q, buf, len);
        *type = LLMOS__MODEL_MSG_TYPE__MODEL_MSG_EMBED;
        break;
    }
    case LLMOS__TASK_KIND__TASK_GRAPH_QUERY: {
        Llmos__GraphQueryRequest q = LLMOS__GRAPH_QUERY_REQUEST__INIT;
        q.sparql = (char *)input;
        q.format = t->format;
        PACK(graph_query_request, &q, buf, len);
        *type = LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_QUERY;
        break;
    }
    case LLMOS__TASK_KIND__TASK_LINK: {
        Llmos__GraphLinkRequest q = LLMOS__GRAPH_LINK_REQUEST__INIT;
        q.text = (char *)input;
        q.hops = t->hops;
        q.hops_set = t->hops_set;
        q.max_facts = t->max_facts;
        PACK(graph_link_request, &q, buf, len);
        *type = LLMOS__GRAPH_MSG_TYPE__GRAPH_MSG_LINK;
        break;
    }
    default:
        return llmos_error_set(err, LLMOS_EUNSUPPORTED, "task kind %d is not known", (int)t->kind);
    }
    return *buf ? 0 : llmos_error_set(err, LLMOS_ENOMEM, "no memory for the task's request (%zu bytes)", *len);
}

/* Keeps only the fact sentences of a link answer (lines that are neither
 * "mention\t..." nor "fact\t...").  text must be writable. */
static void link_sentences(char *text) {
    char *w = text;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, "mention\t", 8) != 0 && strncmp(p, "fact\t", 5) != 0) {
            memmove(w, p, n);
            w += n;
        }
        p += n;
    }
    *w = 0;
}

int jobs_task_result(uint32_t kind, const void *data, size_t len, Llmos__TaskResult *r, ProtobufCMessage **hold) {
    *hold = NULL;
    switch (kind) {
    case LLMOS__TASK_KIND__TASK_ECHO: {
        Llmos__EchoTask *e = llmos__echo_task__unpack(NULL, len, data);
        if (!e) return LLMOS_EFORMAT;
        r->text = e->text;
        *hold = &e->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_GENERATE: {
        Llmos__GenerateResult *g = llmos__generate_result__unpack(NULL, len, data);
        if (!g) return LLMOS_EFORMAT;
        r->text = g->text;
        r->n_tokens = g->n_tokens;
        r->tokens = g->tokens;
        r->finish_reason = g->finish_reason;
        *hold = &g->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_CLASSIFY: {
        Llmos__ScoreResult *q = llmos__score_result__unpack(NULL, len, data);
        if (!q) return LLMOS_EFORMAT;
        r->n_labels = q->n_labels;
        r->labels = q->labels;
        r->n_probs = q->n_probs;
        r->probs = q->probs;
        r->best = q->best;
        r->text = q->best;
        *hold = &q->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_EMBED: {
        Llmos__EmbedResult *q = llmos__embed_result__unpack(NULL, len, data);
        if (!q) return LLMOS_EFORMAT;
        r->n_vector = q->n_vector;
        r->vector = q->vector;
        *hold = &q->base;
        return 0;
    }
    case LLMOS__TASK_KIND__TASK_GRAPH_QUERY:
    case LLMOS__TASK_KIND__TASK_LINK: {
        Llmos__GraphResult *q = llmos__graph_result__unpack(NULL, len, data);
        if (!q) return LLMOS_EFORMAT;
        /* (an empty text is protobuf-c's shared read-only "": not to be
         * written; once it was, and a one-line link job crashed the node) */
        if (kind == LLMOS__TASK_KIND__TASK_LINK && q->text[0]) link_sentences(q->text);
        r->text = q->text;
        r->facts = q->facts;
        *hold = &q->base;
        return 0;
    }
    default:
        return LLMOS_EUNSUPPORTED;
    }
}
