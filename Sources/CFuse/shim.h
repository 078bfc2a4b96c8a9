// libfuse3 for Swift: the API version is fixed here because system library targets take
// no compiler settings, and the few macros Swift cannot import get tiny inline wrappers.
#ifndef TORRENTFS_CFUSE_SHIM_H
#define TORRENTFS_CFUSE_SHIM_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/mount.h>

/// Runs the multi-threaded session loop with at most `max_threads` workers.
static inline int cfuse_session_loop_mt(struct fuse_session *se, unsigned int max_threads) {
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (config == NULL) return -1;
    fuse_loop_cfg_set_max_threads(config, max_threads);
    fuse_loop_cfg_set_clone_fd(config, 0);
    int result = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    return result;
}

static inline void cfuse_set_keep_cache(struct fuse_file_info *fi) { fi->keep_cache = 1; }
static inline void cfuse_set_direct_io(struct fuse_file_info *fi) { fi->direct_io = 1; }
static inline void cfuse_set_nonseekable(struct fuse_file_info *fi) { fi->nonseekable = 1; }
static inline int cfuse_flags(const struct fuse_file_info *fi) { return fi->flags; }
static inline uint64_t cfuse_fh(const struct fuse_file_info *fi) { return fi->fh; }
static inline void cfuse_set_fh(struct fuse_file_info *fi, uint64_t fh) { fi->fh = fh; }

#endif
