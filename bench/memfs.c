/* memfs: the FUSE ceiling for bench/mount_bench.py. A trivial libfuse3 low-level filesystem
 * holding one read-only file, "data", of SIZE bytes kept in memory; reads are answered with
 * fuse_reply_buf straight from that buffer, so a sequential read of it measures what the
 * kernel <-> libfuse round trips cost and nothing else.
 *
 *   cc -O2 -o memfs memfs.c $(pkg-config --cflags --libs fuse3)
 *   memfs SIZE MOUNTPOINT          (stays in the foreground; SIGTERM/SIGINT or
 *                                   fusermount3 -u unmount it)
 *
 * Mounted with max_read=1048576 (and conn->max_read to match), keep_cache on open, kernel
 * attribute/entry caching on. The kernel readahead (read_ahead_kb of the mount's bdi) can only
 * be set after mounting: the benchmark does that. */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_INO 2
#define FILE_NAME "data"
#define MAX_READ (1u << 20)

static char *content;
static size_t content_size;

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)content_size;
		st->st_blocks = (blkcnt_t)((content_size + 511) / 512);
	}
}

static void memfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_read = MAX_READ;
	if (conn->max_readahead < MAX_READ)
		conn->max_readahead = MAX_READ;
}

static void memfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	if (parent != FUSE_ROOT_ID || strcmp(name, FILE_NAME) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof e);
	e.ino = FILE_INO;
	e.attr_timeout = 3600;
	e.entry_timeout = 3600;
	fill_stat(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void memfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	(void)fi;
	if (ino != FUSE_ROOT_ID && ino != FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void memfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	static const char *names[] = { ".", "..", FILE_NAME };
	static const fuse_ino_t inos[] = { FUSE_ROOT_ID, FUSE_ROOT_ID, FILE_INO };
	char buf[512];
	size_t used = 0;
	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (off_t i = off; i < 3; i++) {
		struct stat st;
		size_t len;
		fill_stat(inos[i], &st);
		len = fuse_add_direntry(req, buf + used, sizeof buf - used, names[i], &st, i + 1);
		if (len > sizeof buf - used || used + len > size)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
}

static void memfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void memfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	if (off < 0 || (size_t)off >= content_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > content_size - (size_t)off)
		size = content_size - (size_t)off;
	fuse_reply_buf(req, content + off, size);
}

static const struct fuse_lowlevel_ops ops = {
	.init = memfs_init,
	.lookup = memfs_lookup,
	.getattr = memfs_getattr,
	.readdir = memfs_readdir,
	.open = memfs_open,
	.read = memfs_read,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	char *end;
	int ret = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: %s SIZE MOUNTPOINT\n", argv[0]);
		return 2;
	}
	content_size = strtoull(argv[1], &end, 10);
	if (*end != '\0' || content_size == 0) {
		fprintf(stderr, "memfs: bad size %s\n", argv[1]);
		return 2;
	}
	content = malloc(content_size);
	if (!content) {
		perror("memfs: malloc");
		return 1;
	}
	/* Touch every page (no shared zero page) with a pattern that is not all zeros. */
	for (size_t i = 0; i < content_size / 8; i++)
		((uint64_t *)content)[i] = i * 0x9E3779B97F4A7C15ull;
	for (size_t i = content_size / 8 * 8; i < content_size; i++)
		content[i] = (char)i;

	if (fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, "max_read=1048576,fsname=memfs,subtype=memfs,default_permissions")) {
		fprintf(stderr, "memfs: out of memory\n");
		return 1;
	}
	se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se)
		goto out_args;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, argv[2]) != 0)
		goto out_signals;
	ret = fuse_session_loop(se) != 0;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	fuse_opt_free_args(&args);
	free(content);
	return ret;
}
