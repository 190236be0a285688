#ifndef CDESCENT_ZLIB_SHIM_H
#define CDESCENT_ZLIB_SHIM_H
// zlib (Debian: zlib1g-dev), used to read the bundled gzip data set.
#include <zlib.h>

// inflateInit2 is a macro; Swift needs a function. windowBits 15 + 16 selects the gzip format.
static inline int descent_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
#endif
