#ifndef TORRENTFS_CPOSIX_H
#define TORRENTFS_CPOSIX_H

#include <sys/types.h>

/// Frees the blocks of a byte range of a file, keeping its size (fallocate(2) with
/// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, which Swift's Glibc module does not export).
/// Returns 0, or -1 with errno set.
int tfs_punch_hole(int fd, off_t offset, off_t length);

#endif
