/*
 * blis_select.c — choose BLIS's kernel set from the CPU before BLIS starts.
 *
 * Debian's BLIS 0.9 does not recognise recent AMD EPYC CPUs with AVX-512
 * and falls back to its portable "generic" kernels (34 vs 185 sgemm
 * GFLOP/s per core measured here).  bli_arch_set_id() is not exported, but
 * BLIS reads the environment variable BLIS_ARCH_TYPE — the numeric arch_t
 * id, not a name (a name parses as 0 = skx) — once, when it initialises.
 * So we set it from cpuid before the first BLIS call and then ask BLIS
 * which configuration it runs.  Measured on this machine (1 thread, sgemm
 * 512x768x768): generic 34, haswell 99, zen2 96, zen3 104, skx 185 GFLOP/s.
 * A BLIS_ARCH_TYPE the user set wins.
 */
#include "model/model.h"
#include "runtime/base/log.h"

#include <blis.h>
#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *chosen = "unknown";

static int os_saves_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6) == 0xe6; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM */
}

static int pick_arch(const char **why) {
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                 os_saves_avx512();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx512) {
        *why = "AVX-512 F/DQ/BW/VL";
        return BLIS_ARCH_SKX;
    }
    if (avx2) {
        *why = __builtin_cpu_is("amd") ? "AMD with AVX2+FMA" : "AVX2+FMA";
        return __builtin_cpu_is("amd") ? BLIS_ARCH_ZEN3 : BLIS_ARCH_HASWELL;
    }
    *why = "no AVX2";
    return -1;
}

static void select_once(void) {
    const char *env = getenv("BLIS_ARCH_TYPE");
    const char *why = "BLIS_ARCH_TYPE set by the user";
    int want = -1;
    if (!env || !*env) {
        want = pick_arch(&why);
        if (want >= 0) {
            char v[16];
            snprintf(v, sizeof v, "%d", want);
            setenv("BLIS_ARCH_TYPE", v, 1);
        }
    }
    bli_init(); /* reads BLIS_ARCH_TYPE; query_id before init aborts */
    arch_t got = bli_arch_query_id();
    chosen = bli_arch_string(got);
    if (want >= 0 && (int)got != want)
        LLMOS_WARN("model: asked BLIS for kernel '%s' (%s) but it runs '%s'",
                   bli_arch_string((arch_t)want), why, chosen);
    else
        LLMOS_INFO("model: BLIS kernel '%s' (%s)", chosen, why);
}

const char *model_blis_init(void) {
    pthread_once(&once, select_once);
    return chosen;
}
