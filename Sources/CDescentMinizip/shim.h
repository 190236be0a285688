#ifndef CDESCENT_MINIZIP_SHIM_H
#define CDESCENT_MINIZIP_SHIM_H
// minizip (Debian: libminizip-dev, pkg-config `minizip`; zlib's contrib zip library), used for Keras 3's
// `.keras` archives. Its CRC-32 is zlib's.
#include <zip.h>
#include <unzip.h>

/// Opens a new stored (uncompressed) member `name` in `file`, as Keras writes them: made by Unix (3),
/// version 2.0, permissions 0600, the given DOS date; zip64 only when `large`.
static inline int descent_zip_open_stored(zipFile file, const char *name, unsigned year, unsigned month, unsigned day,
                                          unsigned hour, unsigned minute, unsigned second, int large) {
    zip_fileinfo info;
    info.tmz_date.tm_sec = second;
    info.tmz_date.tm_min = minute;
    info.tmz_date.tm_hour = hour;
    info.tmz_date.tm_mday = day;
    info.tmz_date.tm_mon = month - 1;  // minizip counts months from 0
    info.tmz_date.tm_year = year;
    info.dosDate = 0;
    info.internal_fa = 0;
    info.external_fa = 0600u << 16;
    return zipOpenNewFileInZip4_64(file, name, &info, NULL, 0, NULL, 0, NULL, 0 /* stored */, 0, 0, -MAX_WBITS,
                                   DEF_MEM_LEVEL, Z_DEFAULT_STRATEGY, NULL, 0, (3 << 8) | 20, 0, large);
}
#endif
