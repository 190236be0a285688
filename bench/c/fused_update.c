// The C-level ceiling of the dense optimizer benchmark: Keras' fused Adam and SGD-momentum updates over
// 10M float32 parameters in 10 tensors, written in plain C (gcc -O3 -march=native) and run on N pthreads
// that split the elements into equal contiguous shares, as Descent's multi-tensor apply does. Buffers are
// allocated as Descent allocates them (2 MiB-aligned, MADV_HUGEPAGE before first touch).
//
//   cc -O3 -march=native -fno-math-errno -pthread bench/c/fused_update.c -lm -o fused_update && ./fused_update [threads]
//
// (-fno-math-errno lets sqrtf vectorise, as CDescentMath does for Swift.)
//
// Prints one JSON line per optimizer: {"bench":"c_ceiling","optimizer":"adam",...,"ms_per_step":...}.
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { TENSORS = 10, PER_TENSOR = 1000000, STEPS = 50, REPEATS = 3, MAX_THREADS = 64 };

static float *param[TENSORS], *grad[TENSORS], *slot1[TENSORS], *slot2[TENSORS];
static int threads = 2, optimizer = 0;  // 0: Adam, 1: SGD momentum
static pthread_barrier_t start_barrier, end_barrier;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *alloc_floats(size_t n, float value) {
    void *p = NULL;
    size_t bytes = n * sizeof(float);
    if (posix_memalign(&p, 2u << 20, bytes) != 0) abort();
    madvise(p, bytes, MADV_HUGEPAGE);
    float *f = p;
    for (size_t i = 0; i < n; i++) f[i] = value;
    return f;
}

// Keras' Adam (TensorFlow's ResourceApplyAdam): m += (g - m)(1 - b1); v += (g² - v)(1 - b2);
// var -= m·alpha / (sqrt(v) + eps).
static void adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long lo, long hi) {
    const float omb1 = 0.1f, omb2 = 0.001f, alpha = 0.001f * 0.0316f / 0.1f, eps = 1e-7f;
    for (long i = lo; i < hi; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * omb1;
        float vi = v[i] + (gi * gi - v[i]) * omb2;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (mi * alpha) / (sqrtf(vi) + eps);
    }
}

// Keras' SGD with momentum: a = mu·a - lr·g; var += a.
static void momentum(float *restrict w, const float *restrict g, float *restrict a, long lo, long hi) {
    const float mu = 0.9f, lr = 0.01f;
    for (long i = lo; i < hi; i++) {
        float ai = a[i] * mu - g[i] * lr;
        a[i] = ai;
        w[i] += ai;
    }
}

static void run_share(int share) {
    long total = (long)TENSORS * PER_TENSOR, per = (total + threads - 1) / threads;
    long start = share * per, end = start + per < total ? start + per : total;
    for (int t = 0; t < TENSORS; t++) {
        long lo = (long)t * PER_TENSOR, hi = lo + PER_TENSOR;
        long a = start > lo ? start : lo, b = end < hi ? end : hi;
        if (a >= b) continue;
        if (optimizer == 0) adam(param[t], grad[t], slot1[t], slot2[t], a - lo, b - lo);
        else momentum(param[t], grad[t], slot1[t], a - lo, b - lo);
    }
}

static void *worker(void *arg) {
    int share = (int)(long)arg;
    for (;;) {
        pthread_barrier_wait(&start_barrier);
        run_share(share);
        pthread_barrier_wait(&end_barrier);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) threads = atoi(argv[1]);
    if (threads < 1 || threads > MAX_THREADS) threads = 2;
    for (int t = 0; t < TENSORS; t++) {
        param[t] = alloc_floats(PER_TENSOR, 0.0f);
        grad[t] = alloc_floats(PER_TENSOR, 0.001f);
        slot1[t] = alloc_floats(PER_TENSOR, 0.0f);
        slot2[t] = alloc_floats(PER_TENSOR, 0.0f);
    }
    pthread_barrier_init(&start_barrier, NULL, threads);
    pthread_barrier_init(&end_barrier, NULL, threads);
    for (int s = 1; s < threads; s++) {
        pthread_t tid;
        pthread_create(&tid, NULL, worker, (void *)(long)s);
    }
    const char *names[2] = {"adam", "sgd_momentum"};
    const int bytes_per_param[2] = {28, 20};
    for (optimizer = 0; optimizer < 2; optimizer++) {
        double best = 1e30;
        for (int r = 0; r < REPEATS + 1; r++) {  // the first repeat warms up
            double t0 = now();
            for (int step = 0; step < STEPS; step++) {
                pthread_barrier_wait(&start_barrier);
                run_share(0);
                pthread_barrier_wait(&end_barrier);
            }
            double ms = (now() - t0) * 1e3 / STEPS;
            if (r > 0 && ms < best) best = ms;
        }
        double params = (double)TENSORS * PER_TENSOR;
        printf("{\"bench\":\"c_ceiling\",\"optimizer\":\"%s\",\"params\":%ld,\"tensors\":%d,\"threads\":%d,"
               "\"ms_per_step\":%.6f,\"mparams_per_s\":%.3f,\"gb_per_s\":%.3f}\n",
               names[optimizer], (long)params, TENSORS, threads, best, params / best / 1e3,
               params * bytes_per_param[optimizer] / best / 1e6);
        fflush(stdout);
    }
    return 0;
}
