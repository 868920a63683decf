/*
 * train.c — llmos-train: fine-tune (head | lora | full) or continue
 * pre-training (pretrain) a Llama-family model; `llmos train` runs it.
 *
 *   llmos-train --model stories260K.bin --tokenizer tok512.bin \
 *       --train banking77/train.csv --label-col category \
 *       --labels banking77/categories.json --mode lora --out run1
 *   mpirun -np 2 llmos-train ...      (data-parallel: gradients all-reduced)
 *   llmos-train ... --resume          (continue from run1/ckpt.lmdb)
 *
 * Relative --model/--tokenizer names are looked up in the models folder,
 * relative data names in the data folder, when they do not exist as given.
 * MPI is initialised only when started by mpirun (or with --mpi).
 */
#include "model/train/trainer.h"
#include "runtime/base/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int mpi_allreduce(void *buf, size_t n, int dbl, void *ctx) {
    (void)ctx;
    /* MPI counts are int: reduce in chunks. */
    size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        int cnt = (int)(n - off < chunk ? n - off : chunk);
        void *p = dbl ? (void *)((double *)buf + off) : (void *)((float *)buf + off);
        if (MPI_Allreduce(MPI_IN_PLACE, p, cnt, dbl ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return LLMOS_EUNAVAILABLE;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: llmos-train --model M [--tokenizer TOK] --train FILE --out DIR [options]\n"
            "  --mode head|lora|full|pretrain   what to train (default full; pretrain = next-token loss)\n"
            "  --mode ngram                     a TF-IDF n-gram classifier instead (--mode ngram --help)\n"
            "  --text-col NAME --label-col NAME column names (text, category)\n"
            "  --labels FILE                    JSON array of label names (default: from the data)\n"
            "  --val FILE | --val-frac F        validation file, or a fraction of --train (0.1)\n"
            "  --pool mean|last --dropout P     classification head (mean, 0.1)\n"
            "  --label-smoothing E              classification target (1-E)·one-hot + E/C (0)\n"
            "  --lora-rank R --lora-alpha A     LoRA (8, 16)\n"
            "  --batch N --micro N --seq T      global batch, micro-batch (accumulation), tokens (16 16 64)\n"
            "  --bucket K                       group examples by length within windows of K batches (1 = off)\n"
            "  --steps N | --epochs N           length (1 epoch)\n"
            "  --lr X --min-lr X --warmup N     peak LR, cosine floor, warm-up steps (1e-3 0 0)\n"
            "  --wd X --clip X --beta2 X        weight decay, global-norm clip, Adam beta2 (0.01 1 0.999)\n"
            "  --seed N --split-seed N          run seed, validation split seed (1 1)\n"
            "  --eval-every N --patience N      validation interval, early stopping (100, off)\n"
            "  --save-every N --keep N          checkpoint interval, versions kept (100, 2)\n"
            "  --threads N --resume --quiet --metrics FILE --mpi\n");
}

/* train_ngram.c: --mode ngram, the TF-IDF n-gram classifier */
int train_ngram_wanted(int argc, char **argv);
int train_ngram_main(int argc, char **argv);

int main(int argc, char **argv) {
    if (train_ngram_wanted(argc, argv)) return train_ngram_main(argc, argv);
    model_omp_passive(argv); /* spinning OpenMP barriers collapse on a shared machine */
    train_run_opts_t o;
    train_run_opts_default(&o);
    o.label_col = "category";
    int use_mpi = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE");
    static char bufs[6][1100];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "--mpi")) use_mpi = 1;
        else if (ARG("--model")) o.model_path = train_path_resolve(v, 1, bufs[0], sizeof bufs[0]);
        else if (ARG("--tokenizer")) o.tokenizer_path = train_path_resolve(v, 1, bufs[1], sizeof bufs[1]);
        else if (ARG("--train")) o.train_path = train_path_resolve(v, 0, bufs[2], sizeof bufs[2]);
        else if (ARG("--val")) o.val_path = train_path_resolve(v, 0, bufs[3], sizeof bufs[3]);
        else if (ARG("--labels")) o.labels_path = train_path_resolve(v, 0, bufs[4], sizeof bufs[4]);
        else if (ARG("--out")) o.out_dir = v;
        else if (ARG("--metrics")) o.metrics_path = v;
        else if (ARG("--text-col")) o.text_col = v;
        else if (ARG("--label-col")) o.label_col = v;
        else if (ARG("--mode")) {
            o.mode = !strcmp(v, "head") ? TRAIN_MODE_HEAD : !strcmp(v, "lora") ? TRAIN_MODE_LORA
                     : !strcmp(v, "full") ? TRAIN_MODE_FULL : !strcmp(v, "pretrain") ? TRAIN_MODE_PRETRAIN : 0;
            if (!o.mode) {
                fprintf(stderr, "llmos-train: --mode %s: expected head, lora, full or pretrain\n", v);
                return 2;
            }
        } else if (ARG("--pool")) {
            if (strcmp(v, "mean") && strcmp(v, "last")) {
                fprintf(stderr, "llmos-train: --pool %s: expected mean or last\n", v);
                return 2;
            }
            o.pool = !strcmp(v, "last") ? TRAIN_POOL_LAST : TRAIN_POOL_MEAN;
        } else if (ARG("--dropout")) o.dropout = strtof(v, NULL);
        else if (ARG("--label-smoothing")) o.label_smoothing = strtof(v, NULL);
        else if (ARG("--lora-rank")) o.lora_rank = atoi(v);
        else if (ARG("--lora-alpha")) o.lora_alpha = strtof(v, NULL);
        else if (ARG("--batch")) o.batch = atoi(v);
        else if (ARG("--micro")) o.micro = atoi(v);
        else if (ARG("--seq")) o.seq = atoi(v);
        else if (ARG("--bucket")) o.bucket = atoi(v);
        else if (ARG("--steps")) o.steps = atoll(v);
        else if (ARG("--epochs")) o.epochs = atoi(v);
        else if (ARG("--lr")) o.lr = strtof(v, NULL);
        else if (ARG("--min-lr")) o.min_lr = strtof(v, NULL);
        else if (ARG("--warmup")) o.warmup = atoll(v);
        else if (ARG("--wd")) o.weight_decay = strtof(v, NULL);
        else if (ARG("--clip")) o.clip = strtof(v, NULL);
        else if (ARG("--beta2")) o.beta2 = strtof(v, NULL);
        else if (ARG("--seed")) o.seed = strtoull(v, NULL, 10);
        else if (ARG("--split-seed")) o.split_seed = strtoull(v, NULL, 10);
        else if (ARG("--val-frac")) o.val_frac = strtof(v, NULL);
        else if (ARG("--eval-every")) o.eval_every = atoi(v);
        else if (ARG("--patience")) o.patience = atoi(v);
        else if (ARG("--save-every")) o.save_every = atoi(v);
        else if (ARG("--keep")) o.keep = atoi(v);
        else if (ARG("--threads")) o.threads = atoi(v);
        else {
            fprintf(stderr, "llmos-train: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef ARG
    }
    if (o.mode == TRAIN_MODE_PRETRAIN) o.label_col = NULL;
    if (!o.model_path || !o.train_path || !o.out_dir) {
        usage(stderr);
        return 2;
    }
    if (use_mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &o.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &o.world);
        if (o.world > 1) o.allreduce = mpi_allreduce;
    }
    train_run_result_t res;
    llmos_error_t err = {0};
    int rc = train_run(&o, &res, &err);
    if (rc) fprintf(stderr, "llmos-train: %s\n", err.msg);
    else if (o.rank == 0 && !o.quiet)
        printf("steps %lld loss %.6f best %.6f%s\n", (long long)res.steps, res.last_loss, res.best_metric,
               res.stopped_early ? " (stopped early)" : "");
    if (use_mpi) {
        if (rc && o.world > 1) MPI_Abort(MPI_COMM_WORLD, 1);
        MPI_Finalize();
    }
    return rc ? 1 : 0;
}
