/* config.c — see config.h.  A line parser; the file is read whole (it is small). */
#include "cluster/config.h"

#include "cluster/wire.h"
#include "runtime/base/log.h"
#include "runtime/base/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX (1 << 20)

void cl_config_init(cl_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "tcp://127.0.0.1:7070");
    cfg->max_frame = CL_MAX_FRAME_DEFAULT;
    cfg->task_input_max = 16u << 20;
    cfg->quarantine_after = 3;
    snprintf(cfg->log_level, sizeof cfg->log_level, "info");
    cfg->heartbeat_ms = 250;
    cfg->peer_timeout_ms = 2000;
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "./llmos-data");
    snprintf(cfg->scheduler_policy, sizeof cfg->scheduler_policy, "fifo");
    cfg->queue_limit = 100000;
    cfg->retention_s = 86400;
    cfg->max_retries_default = 2;
    cfg->sync = 1;
}

int cl_endpoint_check(const char *endpoint, const char *where, llmos_error_t *err) {
    if (strncmp(endpoint, "tcp://", 6) != 0 && strncmp(endpoint, "ipc://", 6) != 0)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: endpoint '%s' must start with tcp:// or ipc://", where,
                               endpoint);
    if (strlen(endpoint) >= CL_ENDPOINT_MAX)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: endpoint longer than %d bytes", where, CL_ENDPOINT_MAX - 1);
    if (strncmp(endpoint, "tcp://", 6) == 0) {
        const char *colon = strrchr(endpoint + 6, ':');
        uint64_t port;
        if (!colon || colon == endpoint + 6 ||
            (strcmp(colon + 1, "*") != 0 &&
             llmos_parse_u64("port", colon + 1, 0, 65535, LLMOS_PARSE_HEX, &port, NULL) != 0))
            return llmos_error_set(err, LLMOS_EINVAL, "%s: endpoint '%s' is not tcp://HOST:PORT", where, endpoint);
    } else if (endpoint[6] == 0) {
        return llmos_error_set(err, LLMOS_EINVAL, "%s: endpoint '%s' has no path", where, endpoint);
    }
    return 0;
}

int cl_config_add_peer(cl_config_t *cfg, const char *endpoint, const char *where, llmos_error_t *err) {
    int rc = cl_endpoint_check(endpoint, where, err);
    if (rc) return rc;
    for (uint32_t i = 0; i < cfg->npeers; i++)
        if (strcmp(cfg->peers[i], endpoint) == 0) return 0;
    if (cfg->npeers == CL_PEERS_MAX)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: more than %d peers", where, CL_PEERS_MAX);
    snprintf(cfg->peers[cfg->npeers++], CL_ENDPOINT_MAX, "%s", endpoint);
    return 0;
}

/* Numbers: decimal or 0x hexadecimal (runtime/base/parse.h). */
static int set_u32(uint32_t *dst, const char *key, const char *value, uint32_t min, const char *where,
                   llmos_error_t *err) {
    int rc = llmos_parse_u32(key, value, min, UINT32_MAX, LLMOS_PARSE_HEX, dst, err);
    if (rc) llmos_error_prefix(err, "%s: ", where);
    return rc;
}

/* A size with an optional K/M/G suffix, between 1K and 4G. */
static int set_size(uint64_t *dst, const char *key, const char *value, const char *where, llmos_error_t *err) {
    int rc =
        llmos_parse_u64(key, value, 1024, (uint64_t)1 << 32, LLMOS_PARSE_SIZE | LLMOS_PARSE_HEX, dst, err);
    if (rc) llmos_error_prefix(err, "%s: ", where);
    return rc;
}

static int set_str(char *dst, size_t cap, const char *key, const char *value, const char *where,
                   llmos_error_t *err) {
    if (strlen(value) >= cap)
        return llmos_error_set(err, LLMOS_EINVAL, "%s: %s is longer than %zu bytes", where, key, cap - 1);
    snprintf(dst, cap, "%s", value);
    return 0;
}

int cl_config_set(cl_config_t *cfg, const char *key, const char *value, const char *where, llmos_error_t *err) {
    if (strcmp(key, "listen") == 0 || strcmp(key, "advertise") == 0) {
        int rc = cl_endpoint_check(value, where, err);
        if (rc) return rc;
        return set_str(key[0] == 'l' ? cfg->listen : cfg->advertise, CL_ENDPOINT_MAX, key, value, where, err);
    }
    if (strcmp(key, "node_name") == 0) {
        if (!value[0]) return llmos_error_set(err, LLMOS_EINVAL, "%s: node_name is empty", where);
        for (const char *p = value; *p; p++)
            if (!isgraph((unsigned char)*p))
                return llmos_error_set(err, LLMOS_EINVAL, "%s: node_name '%s' contains a space or control character",
                                       where, value);
        return set_str(cfg->node_name, sizeof cfg->node_name, key, value, where, err);
    }
    if (strcmp(key, "node_id") == 0) {
        int rc = llmos_parse_u64(key, value, 0, CL_CLIENT_NODE_BIT - 1, LLMOS_PARSE_HEX, &cfg->node_id, err);
        if (rc) llmos_error_prefix(err, "%s: ", where);
        return rc;
    }
    if (strcmp(key, "peers") == 0 || strcmp(key, "peer") == 0) {
        char list[CL_ENDPOINT_MAX * 4];
        if (strlen(value) >= sizeof list)
            return llmos_error_set(err, LLMOS_EINVAL, "%s: peers line is too long", where);
        snprintf(list, sizeof list, "%s", value);
        char *rest = list;
        for (char *tok = strsep(&rest, ","); tok; tok = strsep(&rest, ",")) {
            while (isspace((unsigned char)*tok)) tok++;
            char *e = tok + strlen(tok);
            while (e > tok && isspace((unsigned char)e[-1])) *--e = 0;
            if (!*tok) return llmos_error_set(err, LLMOS_EINVAL, "%s: empty entry in peers", where);
            int rc = cl_config_add_peer(cfg, tok, where, err);
            if (rc) return rc;
        }
        return 0;
    }
    if (strcmp(key, "workers") == 0) return set_u32(&cfg->workers, key, value, 0, where, err);
    if (strcmp(key, "heartbeat_ms") == 0) return set_u32(&cfg->heartbeat_ms, key, value, 10, where, err);
    if (strcmp(key, "peer_timeout_ms") == 0) return set_u32(&cfg->peer_timeout_ms, key, value, 50, where, err);
    if (strcmp(key, "max_frame") == 0) {
        uint64_t v = 0;
        int rc = set_size(&v, key, value, where, err);
        if (!rc) cfg->max_frame = (size_t)v;
        return rc;
    }
    if (strcmp(key, "graph") == 0) {
        if (!value[0]) return llmos_error_set(err, LLMOS_EINVAL, "%s: graph is empty", where);
        return set_str(cfg->graph, sizeof cfg->graph, key, value, where, err);
    }
    if (strcmp(key, "graph_max_result_bytes") == 0) return set_size(&cfg->graph_max_result_bytes, key, value, where, err);
    if (strcmp(key, "ensemble") == 0) {
        if (!value[0]) return llmos_error_set(err, LLMOS_EINVAL, "%s: ensemble is empty", where);
        return set_str(cfg->ensemble, sizeof cfg->ensemble, key, value, where, err);
    }
    if (strcmp(key, "data_dir") == 0) {
        if (!value[0]) return llmos_error_set(err, LLMOS_EINVAL, "%s: data_dir is empty", where);
        return set_str(cfg->data_dir, sizeof cfg->data_dir, key, value, where, err);
    }
    if (strcmp(key, "scheduler_policy") == 0) {
        if (strcmp(value, "fifo") != 0 && strcmp(value, "priority") != 0 && strcmp(value, "round_robin") != 0)
            return llmos_error_set(err, LLMOS_EINVAL,
                                   "%s: scheduler_policy = '%s' is not fifo, priority or round_robin", where, value);
        return set_str(cfg->scheduler_policy, sizeof cfg->scheduler_policy, key, value, where, err);
    }
    if (strcmp(key, "queue_limit") == 0) return set_u32(&cfg->queue_limit, key, value, 1, where, err);
    if (strcmp(key, "retention_s") == 0) return set_u32(&cfg->retention_s, key, value, 0, where, err);
    if (strcmp(key, "max_retries_default") == 0) return set_u32(&cfg->max_retries_default, key, value, 0, where, err);
    if (strcmp(key, "sync") == 0) {
        if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
            return llmos_error_set(err, LLMOS_EINVAL, "%s: sync = '%s' is not 0 or 1", where, value);
        cfg->sync = value[0] == '1';
        return 0;
    }
    if (strcmp(key, "target_inflight") == 0)
        return set_str(cfg->target_inflight, sizeof cfg->target_inflight, key, value, where, err);
    if (strcmp(key, "task_input_max") == 0) return set_size(&cfg->task_input_max, key, value, where, err);
    if (strcmp(key, "quarantine_after") == 0) return set_u32(&cfg->quarantine_after, key, value, 0, where, err);
    if (strcmp(key, "log_level") == 0) {
        llmos_log_level lvl;
        if (llmos_log_parse_level(value, &lvl) != 0)
            return llmos_error_set(err, LLMOS_EINVAL, "%s: log_level = '%s' is not error, warn, info or debug",
                                   where, value);
        return set_str(cfg->log_level, sizeof cfg->log_level, key, value, where, err);
    }
    return llmos_error_set(err, LLMOS_EINVAL, "%s: unknown key '%s'", where, key);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

int cl_config_parse(cl_config_t *cfg, const char *text, const char *name, llmos_error_t *err) {
    int lineno = 0;
    const char *p = text;
    while (*p) {
        lineno++;
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        char where[CL_ENDPOINT_MAX + 32];
        snprintf(where, sizeof where, "%s:%d", name, lineno);
        if (n >= sizeof line) return llmos_error_set(err, LLMOS_EINVAL, "%s: line longer than %zu bytes", where,
                                                     sizeof line - 1);
        memcpy(line, p, n);
        line[n] = 0;
        p = nl ? nl + 1 : p + n;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) return llmos_error_set(err, LLMOS_EINVAL, "%s: expected 'key = value', got '%s'", where, s);
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        if (!*key) return llmos_error_set(err, LLMOS_EINVAL, "%s: missing key before '='", where);
        if (!*value) return llmos_error_set(err, LLMOS_EINVAL, "%s: %s has no value", where, key);
        int rc = cl_config_set(cfg, key, value, where, err);
        if (rc) return rc;
    }
    return 0;
}

int cl_config_load(cl_config_t *cfg, const char *path, llmos_error_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return llmos_error_set(err, LLMOS_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *text = malloc(CONFIG_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        return llmos_error_set(err, LLMOS_ENOMEM, "%s: no memory", path);
    }
    size_t n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad)
        rc = llmos_error_set(err, LLMOS_EIO, "%s: read error", path);
    else if (n > CONFIG_FILE_MAX)
        rc = llmos_error_set(err, LLMOS_EINVAL, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
    else if (memchr(text, 0, n))
        rc = llmos_error_set(err, LLMOS_EINVAL, "%s: contains a NUL byte (not a text file)", path);
    else {
        text[n] = 0;
        rc = cl_config_parse(cfg, text, path, err);
    }
    free(text);
    return rc;
}
