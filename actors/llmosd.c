/*
 * llmosd.c — one process = one llmos node: an actor runtime, one ZeroMQ
 * transport (cluster/transport.h) and the built-in actors (actors/node.h).
 *
 * Settings come from defaults, then --config FILE, then flags (flags win).
 * The bound endpoint is printed on stdout as the first line
 * ("llmosd: node <id> listening on <endpoint>") so scripts that start a node
 * on port 0 learn its port.
 *
 * MPI: a plain `llmosd` needs no MPI.  MPI is initialised only when the
 * process was started by mpirun (OMPI_COMM_WORLD_SIZE is set) or with
 * --mpi; then each rank listens on the configured port + its rank, and the
 * ranks exchange their endpoints (MPI_Allgather) and peer with each other,
 * so `mpirun -np N llmosd` is an N-node cluster.  (MPI carries tensors
 * only; the model shards that use it come later.)
 *
 * Shutdown: SIGINT/SIGTERM handlers only write an eventfd; main wakes, stops
 * the transport, destroys the runtime and exits 0.
 */
#include "actors/cls_ensemble.h"
#include "actors/graph_actor.h"
#include "actors/jobs_setup.h"
#include "actors/model_shard.h"
#include "actors/node.h"
#include "cluster/config.h"
#include "cluster/transport.h"
#include "runtime/base/clock.h"
#include "runtime/base/log.h"
#include "runtime/base/parse.h"

#include <errno.h>
#include <inttypes.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int stop_fd = -1;

static void on_signal(int sig) {
    (void)sig;
    uint64_t one = 1;
    int saved = errno;
    ssize_t w = write(stop_fd, &one, sizeof one);
    (void)w;
    errno = saved;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: llmosd [options]\n"
            "Runs one llmos node: an actor runtime with a ZeroMQ ROUTER endpoint.\n\n"
            "  --listen tcp://HOST:PORT  endpoint to bind (default tcp://127.0.0.1:7070; port 0 = any free)\n"
            "  --advertise ENDPOINT      endpoint peers connect back to (default: the bound one)\n"
            "  --config FILE             key = value settings (see docs/cluster.md)\n"
            "  --peer tcp://HOST:PORT    a peer node (repeatable)\n"
            "  --workers N               worker threads (default: one per core)\n"
            "  --node-name NAME          label for logs and status\n"
            "  --node-id ID              fixed 64-bit node id (default: random)\n"
            "  --max-frame SIZE          largest accepted frame, e.g. 64M (default 64M)\n"
            "  --log-level LEVEL         error|warn|info|debug\n"
            "  --graph DB                serve the graph in directory DB as actor `graph` (config: graph)\n"
            "  --graph-max-result-bytes SIZE  cap on one graph answer, e.g. 16M: a query past it stops with\n"
            "                            ETOOBIG (default 16M; config: graph_max_result_bytes)\n"
            "  --ensemble DIR[:W],...    serve these classifier checkpoints as one weighted-average ensemble,\n"
            "                            actor classify/ensemble (and `model` without --model/--classifier;\n"
            "                            config: ensemble)\n"
            "%s"
            "  --data-dir DIR            the node's data directory: jobs.lmdb (default ./llmos-data;\n"
            "                            config: data_dir; see docs/jobs.md)\n"
            "  --mpi                     initialise MPI (automatic under mpirun)\n"
            "  --help                    this text\n",
            actors_model_usage());
}

/* Flags that map to config keys. */
static const struct {
    const char *flag, *key;
} flag_keys[] = {
    {"--listen", "listen"},       {"--advertise", "advertise"}, {"--peer", "peers"},
    {"--workers", "workers"},     {"--node-name", "node_name"}, {"--node-id", "node_id"},
    {"--max-frame", "max_frame"}, {"--log-level", "log_level"},
    {"--data-dir", "data_dir"},   {"--graph-max-result-bytes", "graph_max_result_bytes"},
};

/* Parses argv into cfg; returns 0, 1 (help printed) or -1 (error printed). */
static int parse_args(int argc, char **argv, cl_config_t *cfg, int *want_mpi, const char **graph_db,
                      const char **ensemble, actors_model_opts_t *model) {
    llmos_error_t err;
    /* The config file first, so flags override it wherever they stand. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "llmosd: --config needs a file\n");
                return -1;
            }
            if (cl_config_load(cfg, argv[i + 1], &err) != 0) {
                fprintf(stderr, "llmosd: %s\n", err.msg);
                return -1;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--mpi") == 0) {
            *want_mpi = 1;
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(a, "--graph") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "llmosd: --graph needs a graph directory\n");
                return -1;
            }
            *graph_db = argv[++i];
            continue;
        }
        if (strcmp(a, "--ensemble") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "llmosd: --ensemble needs DIR[:WEIGHT],...\n");
                return -1;
            }
            *ensemble = argv[++i];
            continue;
        }
        int mr = actors_model_parse_flag(model, argc, argv, &i, &err);
        if (mr < 0) {
            fprintf(stderr, "llmosd: %s\n", err.msg);
            return -1;
        }
        if (mr > 0) continue;
        const char *key = NULL;
        for (size_t k = 0; k < sizeof flag_keys / sizeof flag_keys[0]; k++)
            if (strcmp(a, flag_keys[k].flag) == 0) key = flag_keys[k].key;
        if (!key) {
            fprintf(stderr, "llmosd: unknown option '%s' (see llmosd --help)\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "llmosd: %s needs a value\n", a);
            return -1;
        }
        if (cl_config_set(cfg, key, argv[++i], a, &err) != 0) {
            fprintf(stderr, "llmosd: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

/* Under mpirun: every rank learns every other rank's endpoint and peers with it. */
static int mpi_peer_ranks(cl_transport_t *tr, llmos_error_t *err) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) return 0;
    char mine[CL_ENDPOINT_MAX] = {0};
    snprintf(mine, sizeof mine, "%s", cl_transport_endpoint(tr));
    char *all = calloc((size_t)size, CL_ENDPOINT_MAX);
    if (!all) return llmos_error_set(err, LLMOS_ENOMEM, "no memory for %d endpoints", size);
    int rc = 0;
    if (MPI_Allgather(mine, CL_ENDPOINT_MAX, MPI_CHAR, all, CL_ENDPOINT_MAX, MPI_CHAR, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        rc = llmos_error_set(err, LLMOS_EIO, "MPI_Allgather of the node endpoints failed");
    for (int r = 0; r < size && rc == 0; r++) {
        const char *ep = all + (size_t)r * CL_ENDPOINT_MAX;
        if (strcmp(ep, mine) != 0) rc = cl_transport_add_peer(tr, ep, err);
    }
    free(all);
    return rc;
}

/* Under mpirun, rank r listens on port + r so ranks on one host do not clash. */
static int offset_port(cl_config_t *cfg, int rank) {
    if (rank == 0 || strncmp(cfg->listen, "tcp://", 6) != 0) return 0;
    char *colon = strrchr(cfg->listen, ':');
    uint64_t port;
    if (!colon || llmos_parse_u64("port", colon + 1, 1, 65535, LLMOS_PARSE_HEX, &port, NULL) != 0) return 0;
    if (port + (uint64_t)rank > 65535) return -1;
    snprintf(colon + 1, (size_t)(cfg->listen + sizeof cfg->listen - colon - 1), "%" PRIu64, port + (uint64_t)rank);
    return 0;
}

int main(int argc, char **argv) {
    cl_config_t cfg;
    cl_config_init(&cfg);
    int want_mpi = getenv("OMPI_COMM_WORLD_SIZE") != NULL;
    const char *graph_db = NULL, *ensemble = NULL;
    actors_model_opts_t model = {0};
    int pr = parse_args(argc, argv, &cfg, &want_mpi, &graph_db, &ensemble, &model);
    if (pr != 0) return pr > 0 ? 0 : 2;
    if (!graph_db && cfg.graph[0]) graph_db = cfg.graph; /* config `graph = DB`; --graph wins */
    if (!ensemble && cfg.ensemble[0]) ensemble = cfg.ensemble; /* config `ensemble = SPEC`; --ensemble wins */
    llmos_log_level lvl;
    if (llmos_log_parse_level(cfg.log_level, &lvl) == 0) llmos_log_set_level(lvl);

    int mpi_on = 0, rank = 0;
    if (want_mpi) {
        int provided;
        if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
            fprintf(stderr, "llmosd: MPI_Init_thread failed\n");
            return 1;
        }
        mpi_on = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        if (!cfg.node_name[0]) snprintf(cfg.node_name, sizeof cfg.node_name, "rank%d", rank);
        if (offset_port(&cfg, rank) != 0) {
            fprintf(stderr, "llmosd: listen port + rank %d is past 65535\n", rank);
            MPI_Finalize();
            return 1;
        }
    }

    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0) {
        fprintf(stderr, "llmosd: eventfd: %s\n", strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    uint64_t node_id = cfg.node_id ? cfg.node_id : cl_node_id_random();
    char idname[32];
    snprintf(idname, sizeof idname, "%016" PRIx64, node_id);
    const char *name = cfg.node_name[0] ? cfg.node_name : idname;
    llmos_log_set_node(name);

    int status = 1;
    llmos_error_t err;
    rt_system_t *sys = NULL;
    cl_transport_t *tr = NULL;
    actors_node_env_t env = {0};
    rt_system_opts_t so = {.node_id = node_id, .node_name = name, .workers = cfg.workers};
    if (rt_system_new(&so, &sys, &err) != 0) {
        fprintf(stderr, "llmosd: starting the runtime: %s\n", err.msg);
        goto out;
    }
    if (cl_transport_new(sys, &cfg, &tr, &err) != 0) {
        fprintf(stderr, "llmosd: %s\n", err.msg);
        goto out;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (mpi_on && mpi_peer_ranks(tr, &err) != 0) {
        fprintf(stderr, "llmosd: %s\n", err.msg);
        goto out;
    }
    env = (actors_node_env_t){sys, tr, name, cfg.workers ? cfg.workers : (uint32_t)(cores > 0 ? cores : 1),
                              llmos_now_ns()};
    if (actors_node_start(&env, &err) != 0) {
        fprintf(stderr, "llmosd: %s\n", err.msg);
        goto out;
    }
    actors_graph_opts_t gopts = {.max_result_bytes = cfg.graph_max_result_bytes};
    if (graph_db && actors_graph_start(sys, graph_db, &gopts, &err) != 0) {
        fprintf(stderr, "llmosd: %s\n", err.msg);
        goto out;
    }
    if ((model.model || model.classifier) && actors_model_start(sys, tr, &model, mpi_on, &err) != 0) {
        if (model.classifier) /* the message names the checkpoint */
            fprintf(stderr, "llmosd: %s\n", err.msg);
        else
            fprintf(stderr, "llmosd: --model %s: %s\n", model.model, err.msg);
        goto out;
    }
    if (ensemble && rank == 0 &&
        actors_ensemble_start(sys, ensemble, !model.model && !model.classifier, model.threads, &err) != 0) {
        fprintf(stderr, "llmosd: %s\n", err.msg);
        goto out;
    }
    /* The scheduler comes last: at start-up it re-queues the job log's
     * unfinished jobs, whose tasks must find the graph and model actors
     * already registered (else a recovered generation fails ENOTFOUND). */
    if (actors_jobs_start(sys, &cfg, rank, &err) != 0) {
        fprintf(stderr, "llmosd: %s\n", err.msg);
        goto out;
    }
    printf("llmosd: node %016" PRIx64 " listening on %s\n", node_id, cl_transport_endpoint(tr));
    fflush(stdout);

    for (;;) {
        uint64_t v;
        ssize_t r = read(stop_fd, &v, sizeof v);
        if (r == (ssize_t)sizeof v) break;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "llmosd: waiting for a signal: %s\n", strerror(errno));
            break;
        }
    }
    LLMOS_INFO("shutting down");
    status = 0;
out:
    cl_transport_stop(tr);
    rt_system_destroy(&sys);
    cl_transport_destroy(&tr);
    if (mpi_on) MPI_Finalize();
    close(stop_fd);
    return status;
}
