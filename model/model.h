/*
 * model.h — llmos's transformer engine: load a pretrained model, tokenize,
 * run batched forward passes over a paged KV cache, read logits and hidden
 * states.  A plain library: no actors, no sockets, no MPI.
 *
 * Objects and lifecycles
 *   model_t      weights + config + tokenizer of one model.  model_load()
 *                reads a llama2.c checkpoint (+ tokenizer.bin) or a GGUF v3
 *                file; model_new() makes an empty (zeroed, writable fp32) one
 *                from a config, for training.  Immutable after load except
 *                through model_weights() (training writes weights in place).
 *                Freed with model_destroy(&m).
 *   model_ctx_t  an inference context on one model: the shared KV block pool,
 *                per-sequence block tables, and all scratch, sized once at
 *                model_ctx_new().  model_ctx_forward() allocates nothing.
 *   model_sampler_t  one sequence's sampling state (seeded RNG, options).
 *
 * Weights.  fp32 files are mmapped (MAP_PRIVATE, copy-on-write), never
 * copied; f16 tensors are widened to fp32 at load; q8_0 tensors stay q8_0
 * (read in place); with opts.quantize = MODEL_DTYPE_Q8_0 the 2-D fp32
 * matrices are quantized at load.  Every header field, tensor shape, offset,
 * alignment and count is checked before use; a bad file is refused with
 * LLMOS_EFORMAT and a message naming the file, field and byte offset.
 *
 * Tensor parallelism: see the section of that name below and model/tp.h.
 *
 * Thread-safety: a model_t may be shared by several contexts (read-only); a
 * model_ctx_t is used by one thread at a time (it runs its own OpenMP team of
 * `threads` workers inside model_ctx_forward()).
 */
#ifndef LLMOS_MODEL_MODEL_H
#define LLMOS_MODEL_MODEL_H

#include "runtime/base/err.h"

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- config */

typedef enum model_arch {
    MODEL_ARCH_LLAMA = 1, /* decoder: RMSNorm, RoPE, GQA, SwiGLU */
    MODEL_ARCH_BERT = 2,  /* reserved: encoder variant (not loadable yet) */
} model_arch_t;

/* Element types; values are GGML's type ids so GGUF maps directly. */
typedef enum model_dtype {
    MODEL_DTYPE_F32 = 0,
    MODEL_DTYPE_F16 = 1,  /* only in files; widened to F32 at load */
    MODEL_DTYPE_Q8_0 = 8, /* blocks of 32: fp16 scale + 32 int8 (34 bytes) */
} model_dtype_t;

typedef struct model_config {
    model_arch_t arch;
    int dim;               /* model width */
    int hidden_dim;        /* MLP inner width */
    int n_layers;
    int n_heads;           /* query heads */
    int n_kv_heads;        /* key/value heads; divides n_heads (GQA) */
    int head_dim;          /* dim / n_heads */
    int vocab_size;        /* always positive here */
    int seq_len;           /* maximum positions */
    float rope_theta;      /* 10000 for llama2 */
    float norm_eps;        /* RMSNorm epsilon (1e-5) */
    int shared_classifier; /* 1: logits use the embedding table */
} model_config_t;

/* Fills derived fields (head_dim) and checks that the numbers make sense
 * (positive, n_kv_heads divides n_heads, dim divisible by n_heads, even
 * head_dim, sizes below 2^31 elements).  LLMOS_EINVAL with the field named. */
int model_config_check(model_config_t *cfg, llmos_error_t *err);

/* ---------------------------------------------------------------- weights */

/* A 2-D (rows x cols, row-major; cols = input width) or 1-D (rows = 1)
 * tensor.  data is borrowed from the model_t and lives until model_destroy. */
typedef struct model_tensor {
    model_dtype_t dtype;
    int rows;
    int cols;
    void *data; /* F32: float[rows*cols]; Q8_0: rows*(cols/32) blocks */
} model_tensor_t;

typedef struct model_layer {
    model_tensor_t attn_norm; /* [dim] */
    model_tensor_t wq;        /* [n_heads*head_dim, dim] */
    model_tensor_t wk;        /* [n_kv_heads*head_dim, dim] */
    model_tensor_t wv;        /* [n_kv_heads*head_dim, dim] */
    model_tensor_t wo;        /* [dim, n_heads*head_dim] */
    model_tensor_t ffn_norm;  /* [dim] */
    model_tensor_t w1;        /* gate [hidden_dim, dim] */
    model_tensor_t w2;        /* down [dim, hidden_dim] */
    model_tensor_t w3;        /* up   [hidden_dim, dim] */
} model_layer_t;

typedef struct model_weights {
    model_tensor_t tok_embd;   /* [vocab, dim], always F32 */
    model_layer_t *layers;     /* [n_layers] */
    model_tensor_t final_norm; /* [dim] */
    model_tensor_t classifier; /* [vocab, dim]; == tok_embd when shared */
} model_weights_t;

/* ---------------------------------------------------------------- model */

typedef struct model model_t;

typedef struct model_load_opts {
    const char *tokenizer_path; /* llama2.c tokenizer.bin; NULL for GGUF */
    model_dtype_t quantize;     /* F32 (keep) or Q8_0 (quantize at load) */
    int tp_rank, tp_size;       /* tensor parallelism: keep only rank
                                   tp_rank's slices of tp_size (0 or 1 =
                                   the whole model); see "Tensor
                                   parallelism" below */
} model_load_opts_t;

/* Loads `path` (format from its magic: "GGUF" or a llama2.c header).  opts
 * may be NULL.  On success *out is owned by the caller (model_destroy).
 * Errors: LLMOS_ENOTFOUND/EIO (open, mmap), LLMOS_EFORMAT (bad or truncated
 * file: message names field and offset), LLMOS_EUNSUPPORTED (valid but not
 * handled: another architecture, tensor type, a q8_0 column slice not on
 * 32-value blocks), LLMOS_ENOMEM, LLMOS_EINVAL (tp_size does not divide
 * n_heads, n_kv_heads or hidden_dim — "tp 4 does not divide n_kv_heads 2" —
 * or tp_rank is outside 0..tp_size-1). */
int model_load(const char *path, const model_load_opts_t *opts, model_t **out,
               llmos_error_t *err);

/* A zero-initialised, writable fp32 model of shape cfg (no tokenizer), for
 * training from scratch.  Caller owns *out. */
int model_new(const model_config_t *cfg, model_t **out, llmos_error_t *err);

/* Writes m (fp32 only, whole: LLMOS_EINVAL for a tensor-parallel slice) as a
 * llama2.c checkpoint (legacy header; negative vocab_size when the
 * classifier is separate). */
int model_save_llama2c(const model_t *m, const char *path, llmos_error_t *err);

void model_destroy(model_t **m);

/* Borrowed until model_destroy.  The config is always the whole model's;
 * on a tensor-parallel slice the weights hold this rank's slices (shapes
 * in the tensors; see "Tensor parallelism"). */
const model_config_t *model_config(const model_t *m);
model_weights_t *model_weights(model_t *m);
/* Bytes of weight data one forward token reads (for bandwidth limits); on
 * a slice, this rank's bytes. */
size_t model_weight_bytes(const model_t *m);
/* The rank's place in its tensor-parallel group (0 of 1: whole model). */
void model_tp_part(const model_t *m, int *tp_rank, int *tp_size);

/* ---------------------------------------------------------------- tokenizer */

typedef struct model_tokenizer model_tokenizer_t;

/* The model's tokenizer; NULL when it has none (model_new).  Borrowed. */
const model_tokenizer_t *model_tokenizer(const model_t *m);

/* Loads a llama2.c tokenizer.bin for vocab_size tokens (caller owns). */
int model_tokenizer_load(const char *path, int vocab_size, model_tokenizer_t **out,
                         llmos_error_t *err);
void model_tokenizer_destroy(model_tokenizer_t **t);

int model_tokenizer_bos(const model_tokenizer_t *t);
int model_tokenizer_eos(const model_tokenizer_t *t);
int model_tokenizer_vocab_size(const model_tokenizer_t *t);

/* SentencePiece BPE with byte fallback (llama2.c semantics: a leading
 * "dummy prefix" space when text is non-empty).  Writes at most cap ids to
 * out and the count to *n_out.  LLMOS_ETOOBIG when cap is too small
 * (len + 3 always suffices). */
int model_tokenize(const model_tokenizer_t *t, const char *text, size_t len, int bos, int eos,
                   int *out, int cap, int *n_out, llmos_error_t *err);

/* The longest piece of the vocabulary in bytes (at least 1): a text of
 * more than (n - 1) * this many bytes is always more than n tokens with
 * BOS, so a caller can refuse it before tokenizing. */
int model_tokenizer_max_piece(const model_tokenizer_t *t);

/* The bytes token `id` stands for when it follows `prev` (the dummy-prefix
 * space after BOS is dropped, <0xHH> becomes that byte, control tokens are
 * empty).  Returns a pointer borrowed from t (or to an internal static byte)
 * and its length in *len; NULL for an id out of range. */
const char *model_token_piece(const model_tokenizer_t *t, int prev, int id, size_t *len);

/* Concatenates the pieces of ids (ids[0] is treated as following BOS when
 * it is not BOS itself) into out (cap bytes, NUL-terminated when room);
 * *n_out = bytes written.  LLMOS_ETOOBIG when out is too small. */
int model_detokenize(const model_tokenizer_t *t, const int *ids, int n, char *out, size_t cap,
                     size_t *n_out, llmos_error_t *err);

/* ---------------------------------------------------------------- a prompt with droppable context */

/* Context is text put in front of a prompt that may be dropped to fit the
 * model's window (e.g. knowledge-graph facts): one item per line.  The text
 * the model sees is the layout of graph/prompt.h: the kept lines, each
 * ended by '\n', one empty line, then the prompt byte for byte; with no
 * line kept, the prompt alone.  Empty context lines are ignored.
 *
 * Fitting (one rule for llmos-generate --graph and the model shards): the
 * prompt alone must fit P = min(positions, seq_len) positions (positions
 * is llama2.c's -n: prompt + generation; 0 = seq_len), else LLMOS_ETOOBIG.
 * The kept lines take positions on top of it, up to seq_len, leaving room
 * for the generation the caller promises: what the prompt alone gets with
 * positions set (P - prompt + 1 tokens), else 1 token; max_new (> 0) lowers
 * that promise.  Lines are dropped whole from the end until the text fits
 * (the most lines that do, measured on whole texts: a tokenizer's cost is
 * not the sum of its parts). */
typedef struct model_prompt_fit_opts {
    int seq_len;   /* the model's positions (> 0) */
    int positions; /* prompt + generation positions (-n); 0 = none (more than seq_len is cut to it) */
    int max_new;   /* tokens the generation needs at most; 0 = all positions allow */
    int extra;     /* free entries to leave after the text's tokens in `tokens` */
    const char *positions_name; /* how errors name positions ("max_positions", "-n"); NULL = "positions" */
} model_prompt_fit_opts_t;

typedef struct model_prompt_fit {
    int *tokens;            /* the text's ids with BOS, then `extra` free entries (owned) */
    int n_tokens, cap;      /* ids of the text; entries in tokens */
    int n_prompt;           /* ids of the prompt alone (with BOS) */
    int context_tokens;     /* n_tokens - n_prompt when a line is kept, else 0 */
    int limit;              /* positions the generation may run to (prompt and context included):
                               positions + context_tokens (at most seq_len), or seq_len */
    char *text;             /* the whole text, NUL-terminated (owned) */
    size_t len, prefix_len; /* its bytes; the bytes before the prompt */
    int lines_kept, lines_dropped;
} model_prompt_fit_t;

/* Fits context (clen bytes, may be NULL/0) in front of prompt (plen bytes)
 * for tokenizer t.  *out must be released with model_prompt_fit_deinit (also
 * after an error).  Errors: LLMOS_ETOOBIG ("the prompt is 514 tokens, more
 * than seq_len 512"; a prompt so long in bytes that it cannot fit is refused
 * before it is tokenized), LLMOS_EINVAL (seq_len <= 0), LLMOS_ENOMEM. */
int model_prompt_fit(const model_tokenizer_t *t, const char *context, size_t clen, const char *prompt,
                     size_t plen, const model_prompt_fit_opts_t *o, model_prompt_fit_t *out,
                     llmos_error_t *err);
void model_prompt_fit_deinit(model_prompt_fit_t *f);

/* ---------------------------------------------------------------- inference */

typedef struct model_ctx model_ctx_t;

/* A tensor-parallel group's collectives (opaque; model/tp.h makes one from
 * an MPI communicator — this header stays free of MPI). */
typedef struct model_tp model_tp_t;

typedef struct model_ctx_opts {
    int threads;        /* 1..N workers for BLIS and the attention; 0 = 1 */
    int max_seqs;       /* sequences that can be live at once (slots) */
    int max_tokens;     /* rows one forward may process (sum of n_tokens) */
    int kv_blocks;      /* blocks in the shared pool; 0 = enough for
                           max_seqs full-length sequences */
    int all_logits;     /* 1: logits/hidden for every row, not only the last
                           row of each batch entry (needs max_tokens rows) */
    const model_tp_t *tp; /* the group when the model is a tensor-parallel
                           slice (borrowed; must outlive the context);
                           NULL for a whole model */
} model_ctx_opts_t;

#define MODEL_KV_BLOCK 16 /* tokens per KV block */

/* Caller owns *out (model_ctx_destroy).  m must outlive the context.
 * LLMOS_EINVAL when m is a slice of tp_size > 1 and opts->tp is NULL or
 * its rank/size differ from the model's. */
int model_ctx_new(const model_t *m, const model_ctx_opts_t *opts, model_ctx_t **out,
                  llmos_error_t *err);
void model_ctx_destroy(model_ctx_t **c);

/* Opens a sequence (position 0, no blocks); *seq is its slot id.
 * LLMOS_EOVERLOADED when all slots are in use. */
int model_seq_open(model_ctx_t *c, int *seq, llmos_error_t *err);
/* Returns the sequence's blocks to the pool and frees the slot. */
void model_seq_close(model_ctx_t *c, int seq);
/* Tokens already in the sequence's KV cache (its next position). */
int model_seq_len(const model_ctx_t *c, int seq);
/* Forgets positions >= len (keeps the first len), freeing whole blocks. */
int model_seq_truncate(model_ctx_t *c, int seq, int len, llmos_error_t *err);

/* KV-cache accounting: blocks in use / in the pool, bytes per block (all
 * layers, K and V; on a tensor-parallel rank, of its KV heads). */
void model_ctx_kv_usage(const model_ctx_t *c, int *used, int *total, size_t *block_bytes);

/* One entry of a batch: append n_tokens tokens to sequence seq. */
typedef struct model_batch_entry {
    int seq;
    const int *tokens; /* borrowed for the call */
    int n_tokens;      /* >= 1 */
} model_batch_entry_t;

/* Runs the transformer over all entries at once: their rows are stacked so
 * each weight matrix is one GEMM (prefill chunks and decode steps mix
 * freely).  Each new token attends to its sequence's cache and the new
 * tokens before it.  Afterwards model_ctx_logits(c, i) is the logits row of
 * entry i's last token (or of row i with all_logits).  LLMOS_ETOOBIG when the
 * rows exceed max_tokens or a sequence would pass seq_len; LLMOS_ENOMEM when
 * the pool has no free block (nothing was changed then); LLMOS_EINVAL for a
 * bad seq or token id. */
int model_ctx_forward(model_ctx_t *c, const model_batch_entry_t *entries, int n_entries,
                      llmos_error_t *err);

/* model_ctx_forward, and for every entry i with want_rows[i] != 0 also the
 * final-norm hidden state of EVERY one of its rows (model_ctx_hidden_row),
 * not only the last: what mean pooling needs, so a whole prompt chunk is
 * pooled in one forward instead of one row per forward.  No logits are
 * computed for those rows (the last row's are there as always).  Costs one
 * RMSNorm per such row; entries without it (decode steps, generation
 * prompts) cost nothing more.  want_rows: n_entries flags, borrowed for the
 * call; NULL = none (= model_ctx_forward).  A separate array rather than a
 * field of model_batch_entry_t, so positional initialisers of entries
 * elsewhere stay complete. */
int model_ctx_forward_rows(model_ctx_t *c, const model_batch_entry_t *entries, int n_entries, const uint8_t *want_rows,
                           llmos_error_t *err);

/* Borrowed until the next model_ctx_forward.  i: entry index (or row index
 * with all_logits).  Logits: vocab_size floats.  Hidden: dim floats, the
 * final-norm output that feeds the classifier.  Both are the whole rows on
 * every rank of a tensor-parallel group. */
const float *model_ctx_logits(const model_ctx_t *c, int i);
const float *model_ctx_hidden(const model_ctx_t *c, int i);

/* The final-norm hidden state (dim floats) of row j (0..n_tokens-1) of
 * batch entry `entry` of the last forward, when that entry was flagged in
 * model_ctx_forward_rows (or the context has all_logits); NULL otherwise or out of range.  The
 * rows live in the context's scratch for max_tokens rows (nothing is
 * allocated); borrowed until the next model_ctx_forward.  The whole row on
 * every rank of a tensor-parallel group, like model_ctx_hidden. */
const float *model_ctx_hidden_row(const model_ctx_t *c, int entry, int j);

/* Time spent inside the group's collectives by this context since it was
 * made or last reset (all zero without tp). */
typedef struct model_comm_stats {
    uint64_t allreduce_ns, allreduce_calls, allreduce_bytes;
    uint64_t allgather_ns, allgather_calls, allgather_bytes;
} model_comm_stats_t;
void model_ctx_comm_stats(const model_ctx_t *c, model_comm_stats_t *out);
void model_ctx_comm_reset(model_ctx_t *c);

/* ---------------------------------------------------------------- tensor parallelism
 *
 * Megatron-style, over a group of T ranks (one process each; model/tp.h
 * makes the group from an MPI communicator):
 *   - each rank loads with opts.tp_rank/tp_size and keeps only its slices:
 *     rows of wq (its n_heads/T query heads), wk, wv (its n_kv_heads/T KV
 *     heads), w1, w3 (its hidden_dim/T MLP columns) — column-parallel —,
 *     the matching input columns of wo and w2 — row-parallel — and its
 *     share of the classifier's vocabulary rows (also when the classifier
 *     is the embedding table, which stays whole for look-ups);
 *   - model_ctx_forward runs the attention of its heads on a KV cache that
 *     holds only its KV heads, sums the partial outputs of wo and of w2
 *     with one all-reduce each per layer (on the stacked rows of the whole
 *     batch), computes its vocabulary slice of the logits and all-gathers
 *     the full rows.
 * Contract: every rank of the group calls the same context functions with
 * the same arguments in the same order (model_ctx_new with the same
 * options, model_seq_open/close/truncate, model_ctx_forward with identical
 * entries).  Sequence operations are local and deterministic, so every rank
 * gets the same slot ids; a forward's argument checks happen before any
 * collective, so a bad batch fails on every rank alike.  Afterwards
 * model_ctx_logits(c, i) and model_ctx_hidden(c, i) are the full rows,
 * identical on every rank.  A collective that fails (a rank died) returns
 * LLMOS_EUNAVAILABLE; the context's sequences in that batch are then
 * undefined — close the group.  A slice is for inference only (training
 * and model_save_llama2c need the whole model). */

/* ---------------------------------------------------------------- sampling */

typedef struct model_sample_opts {
    float temperature;        /* 0 = greedy (argmax) */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 or 0 = off */
    float repetition_penalty; /* 1 or 0 = off; CTRL-style on seen tokens */
    uint64_t seed;
} model_sample_opts_t;

typedef struct model_sampler model_sampler_t;

/* Scratch for vocab_size candidates; caller owns *out. */
int model_sampler_new(int vocab_size, const model_sample_opts_t *opts, model_sampler_t **out,
                      llmos_error_t *err);
void model_sampler_destroy(model_sampler_t **s);
/* Picks the next token from logits (vocab floats; modified in place by the
 * penalty/temperature).  history: tokens so far (for the penalty). */
int model_sampler_sample(model_sampler_t *s, float *logits, const int *history, int n_history);

/* Stop strings: returns the length of the longest suffix of text that is a
 * prefix of some stop string (bytes to hold back), and sets *hit when a stop
 * string occurs in text (and *at to where it starts). */
size_t model_stop_check(const char *const *stops, int n_stops, const char *text, size_t len,
                        int *hit, size_t *at);

/* ---------------------------------------------------------------- BLIS */

/* Picks BLIS's kernel set from the CPU's features (skx with AVX-512, zen3 on
 * AMD with AVX2, haswell on Intel with AVX2) before BLIS initialises, unless
 * BLIS_ARCH_TYPE is already set; logs the choice.  Idempotent and
 * thread-safe; model_load / model_ctx_new call it.  Returns the name of the
 * kernel set BLIS reports it runs. */
const char *model_blis_init(void);

/* ---------------------------------------------------------------- process */

/* For a program's main(), before anything else: when OMP_WAIT_POLICY is not
 * set, sets it to "passive" and re-executes the program (libgomp reads it
 * only at start-up), because spinning barriers make multi-threaded forward
 * passes collapse on a shared machine (see omp_env.c).  Returns when nothing
 * had to be done or the re-exec failed. */
void model_omp_passive(char **argv);

#endif
