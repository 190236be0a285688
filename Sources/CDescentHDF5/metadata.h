#ifndef CDESCENT_HDF5_METADATA_H
#define CDESCENT_HDF5_METADATA_H
// Reading an HDF5 file's metadata in a forked child process.
//
// Decoding a damaged file's metadata can make libhdf5 1.10.8 overrun a buffer: a global heap object
// longer than the variable-length string that refers to it (a one-byte change) is copied whole into a
// buffer sized for the string (1.14 checks this). The overrun may crash at once or corrupt memory
// silently, so it must happen in a process whose memory does not matter. `descent_h5_start_metadata`
// forks; the child opens the file, visits every object (its path and kind; a dataset's type, shape and
// layout are decoded too) and reads every attribute, and streams them through a pipe;
// `descent_h5_collect_metadata` collects the stream and the child's exit status. Plain C, so the child
// touches only libhdf5, malloc, write and _exit (never OpenBLAS).
//
// A real fork(), not posix_spawn or a raw clone: there is no executable to spawn, and only fork() resets
// glibc's malloc locks in the child (libhdf5 allocates). fork() runs every pthread_atfork handler too, and
// OpenBLAS's hangs when a product runs on another thread at that moment, so the caller holds products
// off around the fork alone (`OpenBLASForkGate.forking` in DescentTensor, see `HDF5Metadata.read`).
//
// The stream: records of a tag byte and fields; numbers are little-endian u64, strings a u64 length
// and the bytes.
//   'O' kind ('g' group, 'd' dataset, 'o' other) path
//   'A' path name kind ('s' strings, 'i' integers, 'f' floats, 'u' other) scalar (u8) count, then
//       count strings, or count × 8 bytes (int64 / float64)
//   'X' message          libhdf5 reported an error (the child then exits with status 3)
//   'E'                  the end: everything was read
#include <hdf5.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Set by sanitizer runtimes (ASan) when linked in; a fuzzer registers its crash handler through it.
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

typedef struct {
    int fd;
    int failed;
    size_t used;
    unsigned char buffer[32768];
} descent_h5_sink;

static inline void descent_h5_flush(descent_h5_sink *s) {
    size_t done = 0;
    while (done < s->used && !s->failed) {
        ssize_t n = write(s->fd, s->buffer + done, s->used - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            s->failed = 1;
            break;
        }
        done += (size_t)n;
    }
    s->used = 0;
}

static inline void descent_h5_put(descent_h5_sink *s, const void *bytes, size_t count) {
    const unsigned char *p = (const unsigned char *)bytes;
    while (count > 0 && !s->failed) {
        if (s->used == sizeof s->buffer) descent_h5_flush(s);
        size_t room = sizeof s->buffer - s->used, n = count < room ? count : room;
        memcpy(s->buffer + s->used, p, n);
        s->used += n;
        p += n;
        count -= n;
    }
}

static inline void descent_h5_put_u64(descent_h5_sink *s, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    descent_h5_put(s, b, 8);
}

static inline void descent_h5_put_string(descent_h5_sink *s, const char *text, size_t length) {
    descent_h5_put_u64(s, (uint64_t)length);
    descent_h5_put(s, text, length);
}

typedef struct {
    descent_h5_sink *sink;
    const char *path;
} descent_h5_visit;

static inline herr_t descent_h5_attribute(hid_t location, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    descent_h5_visit *visit = (descent_h5_visit *)data;
    descent_h5_sink *s = visit->sink;
    hid_t a = H5Aopen(location, name, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t status = 0;
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    hssize_t count = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    H5S_class_t shape = space < 0 ? H5S_NO_CLASS : H5Sget_simple_extent_type(space);
    if (type < 0 || count < 0 || count > (1 << 24) || rank < 0) {
        status = -1;
    } else {
        size_t n = (size_t)count;
        unsigned char scalar = shape == H5S_SCALAR;
        H5T_class_t cls = H5Tget_class(type);
        unsigned char tag = 'A';
        descent_h5_put(s, &tag, 1);
        descent_h5_put_string(s, visit->path, strlen(visit->path));
        descent_h5_put_string(s, name, strlen(name));
        if (cls == H5T_STRING) {
            unsigned char kind = 's';
            descent_h5_put(s, &kind, 1);
            descent_h5_put(s, &scalar, 1);
            descent_h5_put_u64(s, (uint64_t)n);
            hid_t memory = H5Tcopy(H5T_C_S1);
            H5Tset_cset(memory, H5Tget_cset(type));
            htri_t variable = H5Tis_variable_str(type);
            if (variable > 0) {
                H5Tset_size(memory, H5T_VARIABLE);
                char **strings = (char **)calloc(n ? n : 1, sizeof(char *));
                status = strings ? H5Aread(a, memory, strings) : -1;
                for (size_t i = 0; i < n; i++) {
                    const char *text = (status >= 0 && strings[i]) ? strings[i] : "";
                    descent_h5_put_string(s, text, strlen(text));
                }
                if (strings && status >= 0) for (size_t i = 0; i < n; i++) H5free_memory(strings[i]);
                free(strings);
            } else {
                size_t width = H5Tget_size(type);
                if (variable < 0 || width == 0 || width > (1 << 20) || (double)width * (double)n > (double)(1 << 26)) {
                    status = -1;
                } else {
                    H5Tset_size(memory, width);
                    H5Tset_strpad(memory, H5T_STR_NULLPAD);
                    char *bytes = (char *)calloc(n ? n : 1, width);
                    status = bytes ? H5Aread(a, memory, bytes) : -1;
                    for (size_t i = 0; i < n; i++) {
                        const char *text = status >= 0 ? bytes + i * width : "";
                        size_t length = status >= 0 ? strnlen(text, width) : 0;
                        descent_h5_put_string(s, text, length);
                    }
                    free(bytes);
                }
            }
            H5Tclose(memory);
        } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
            unsigned char kind = cls == H5T_INTEGER ? 'i' : 'f';
            descent_h5_put(s, &kind, 1);
            descent_h5_put(s, &scalar, 1);
            descent_h5_put_u64(s, (uint64_t)n);
            unsigned char *values = (unsigned char *)calloc(n ? n : 1, 8);
            status = values ? H5Aread(a, cls == H5T_INTEGER ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, values) : -1;
            if (values) descent_h5_put(s, values, n * 8);
            free(values);
        } else {
            unsigned char kind = 'u';
            descent_h5_put(s, &kind, 1);
            descent_h5_put(s, &scalar, 1);
            descent_h5_put_u64(s, (uint64_t)cls);
        }
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Aclose(a);
    return status < 0 ? -1 : 0;
}

static inline herr_t descent_h5_object(hid_t location, const char *name, const H5O_info_t *info, void *data) {
    descent_h5_sink *s = (descent_h5_sink *)data;
    size_t length = strlen(name);
    char *path = (char *)malloc(length + 2);
    if (!path) return -1;
    if (strcmp(name, ".") == 0) {
        strcpy(path, "/");
    } else {
        path[0] = '/';
        memcpy(path + 1, name, length + 1);
    }
    unsigned char tag = 'O';
    unsigned char kind = info->type == H5O_TYPE_GROUP ? 'g' : info->type == H5O_TYPE_DATASET ? 'd' : 'o';
    descent_h5_put(s, &tag, 1);
    descent_h5_put(s, &kind, 1);
    descent_h5_put_string(s, path, strlen(path));
    herr_t status = -1;
    hid_t object = H5Oopen(location, name, H5P_DEFAULT);
    if (object >= 0) {
        descent_h5_visit visit = {s, path};
        status = H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, NULL, descent_h5_attribute, &visit);
        if (status >= 0 && kind == 'd') {
            hid_t type = H5Dget_type(object), space = H5Dget_space(object), plist = H5Dget_create_plist(object);
            if (type < 0 || space < 0 || plist < 0) status = -1;
            if (plist >= 0) H5Pclose(plist);
            if (space >= 0) H5Sclose(space);
            if (type >= 0) H5Tclose(type);
        }
        H5Oclose(object);
    }
    free(path);
    return status < 0 ? -1 : 0;
}

static inline herr_t descent_h5_error_text(unsigned n, const H5E_error2_t *error, void *data) {
    (void)n;
    descent_h5_sink *s = (descent_h5_sink *)data;
    if (error && error->desc && error->desc[0]) {
        unsigned char tag = 'X';
        descent_h5_put(s, &tag, 1);
        descent_h5_put_string(s, error->desc, strlen(error->desc));
        return 1;  // the most specific message is enough
    }
    return 0;
}

/// The child's work: the stream above into `fd`; 0 when everything was read, 3 when libhdf5 reported
/// an error, 4 when the pipe failed.
static inline int descent_h5_write_metadata(const char *path, int fd) {
    descent_h5_sink *s = (descent_h5_sink *)calloc(1, sizeof(descent_h5_sink));
    if (!s) return 4;
    s->fd = fd;
    int result = 0;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    herr_t status = file < 0 ? -1 : H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, descent_h5_object, s, H5O_INFO_BASIC);
    if (status < 0) {
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, descent_h5_error_text, s);
        result = 3;
    } else {
        unsigned char end = 'E';
        descent_h5_put(s, &end, 1);
    }
    if (file >= 0) H5Fclose(file);
    descent_h5_flush(s);
    if (s->failed) result = 4;
    free(s);
    return result;
}

/// A child started by `descent_h5_start_metadata`: its process and the read end of its pipe.
typedef struct {
    pid_t pid;
    int fd;
} descent_h5_child;

/// Forks a child that runs `descent_h5_write_metadata(path)` into a pipe; `descent_h5_collect_metadata`
/// then reads the pipe and reaps the child. Returns 0, or the errno of the failed `pipe2` or `fork`.
///
/// Only the fork is here, so that the caller can hold off OpenBLAS's products around just this call
/// (`OpenBLASForkGate.forking` in DescentTensor): `fork()` runs OpenBLAS's atfork handler, which stops its
/// worker threads and hangs forever if one of them is busy with a product. The pipe is close-on-exec, so a
/// program another thread starts at the same time does not hold its write end open (the parent would
/// then wait for the timeout instead of the end of the stream).
static inline int descent_h5_start_metadata(const char *path, descent_h5_child *child) {
    child->pid = -1;
    child->fd = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return errno;
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(fds[0]);
        close(fds[1]);
        return error;
    }
    if (pid == 0) {
        // The default action for crashes: no inherited handler (Swift's backtracer, a fuzzer's) runs.
        int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
        for (unsigned i = 0; i < sizeof crashes / sizeof crashes[0]; i++) signal(crashes[i], SIG_DFL);
        // Under a sanitizer, a finding in the child ends the child only (not a fuzzer's crash report), and
        // its report goes nowhere: what the parent reports is the HDF5Error.
        if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(NULL);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) { dup2(null, 2); close(null); }
        close(fds[0]);
        _exit(descent_h5_write_metadata(path, fds[1]));
    }
    close(fds[1]);
    child->pid = pid;
    child->fd = fds[0];
    return 0;
}

/// Collects the stream of a child started by `descent_h5_start_metadata` into `*out` (malloc'd,
/// `*length` bytes; the caller frees it) and reaps the child. Returns the child's exit status (0, 3 or
/// 4), 1000 + the signal that ended it, or 2000 when it ran past `timeout_ms` or wrote more than `limit`
/// bytes (it is killed).
static inline int descent_h5_collect_metadata(descent_h5_child child, int timeout_ms, size_t limit, unsigned char **out, size_t *length) {
    *out = NULL;
    *length = 0;
    pid_t pid = child.pid;
    int fd = child.fd;
    size_t capacity = 65536, used = 0;
    unsigned char *buffer = (unsigned char *)malloc(capacity);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int overrun = buffer == NULL;
    while (!overrun) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms) { overrun = 1; break; }
        struct pollfd p = {fd, POLLIN, 0};
        int ready = poll(&p, 1, (int)(timeout_ms - elapsed));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) { overrun = 1; break; }
        if (used == capacity) {
            if (capacity >= limit) { overrun = 1; break; }
            unsigned char *bigger = (unsigned char *)realloc(buffer, capacity * 2);
            if (!bigger) { overrun = 1; break; }
            buffer = bigger;
            capacity *= 2;
        }
        ssize_t n = read(fd, buffer + used, capacity - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // end of the stream (or an error: the status says what happened)
        used += (size_t)n;
    }
    close(fd);
    int status = 0;
    if (overrun) kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (overrun) {
        free(buffer);
        return 2000;
    }
    *out = buffer;
    *length = used;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
    return 1000;
}
#endif
