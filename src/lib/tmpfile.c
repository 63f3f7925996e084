/*
 * tmpfile.c - temporary files renamed into place (see tmpfile.h).
 *
 * The temporary file is created with open(O_CREAT | O_EXCL, 0666) under a
 * name "DEST.tmp.XXXXXX" whose six characters are drawn from a process-wide
 * counter mixed with the pid and the clock, retrying on a name clash.  This
 * is mkstemp's job done by hand for one reason: mkstemp creates the file
 * with mode 0600, and the only way to learn the umask in order to widen it
 * is umask(), which changes it for every thread of the process.  With open
 * the kernel applies the umask (and default ACLs) itself, exactly as for
 * any ordinary new file.
 */
#define _POSIX_C_SOURCE 200809L
#include "tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUFFIX ".tmp.XXXXXX"
#define N_RANDOM 6
#define MAX_ATTEMPTS 100

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* Overwrite the last N_RANDOM characters of name with a fresh pick. */
static void pick_name(char *name, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	static atomic_uint_fast64_t counter;
	struct timespec ts = { 0, 0 };
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t x = splitmix64(atomic_fetch_add(&counter, 1) ^ ((uint64_t)getpid() << 32));
	x = splitmix64(x ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30));
	for (size_t i = len - N_RANDOM; i < len; i++) {
		name[i] = alphabet[x % (sizeof alphabet - 1)];
		x /= sizeof alphabet - 1;
	}
}

/*
 * The pending temporary files, for qa_tmpfile_remove_pending() to remove
 * from a signal handler: each slot holds its own copy of the name, so the
 * handler reads no memory that another thread may free.  A slot is free (0),
 * being filled (1) or live (2).  A file that finds no free slot is not
 * registered (it still is removed by abort and commit).
 */
#define N_SLOTS 32
#define SLOT_PATH 4096
static struct {
	atomic_int state;
	char path[SLOT_PATH];
} slots[N_SLOTS];

static int slot_take(const char *path)
{
	size_t n = strlen(path);
	if (n >= SLOT_PATH)
		return 0;
	for (int i = 0; i < N_SLOTS; i++) {
		int want = 0;
		if (atomic_compare_exchange_strong(&slots[i].state, &want, 1)) {
			memcpy(slots[i].path, path, n + 1);
			atomic_store(&slots[i].state, 2);
			return i + 1;
		}
	}
	return 0;
}

static void slot_release(int slot)
{
	if (slot > 0 && slot <= N_SLOTS)
		atomic_store(&slots[slot - 1].state, 0);
}

void qa_tmpfile_remove_pending(void)
{
	for (int i = 0; i < N_SLOTS; i++)
		if (atomic_load(&slots[i].state) == 2)
			unlink(slots[i].path);
}

static void reset(struct qa_tmpfile *t)
{
	t->tmp_path = NULL;
	t->dest_path = NULL;
	t->fd = -1;
	t->slot = 0;
}

enum qa_err qa_tmpfile_open(struct qa_tmpfile *t, const char *dest, struct qa_diag *d)
{
	if (!t)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET, "qa_tmpfile_open needs a struct");
	reset(t);
	if (!dest || !*dest)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "qa_tmpfile_open needs a destination path");
	size_t n = strlen(dest);
	char *dst = malloc(n + 1);
	char *tmp = n < SIZE_MAX - sizeof SUFFIX ? malloc(n + sizeof SUFFIX) : NULL;
	if (!dst || !tmp) {
		free(dst);
		free(tmp);
		return qa_diag_set(d, QA_ERR_NOMEM, QA_NO_OFFSET, "out of memory");
	}
	memcpy(dst, dest, n + 1);
	memcpy(tmp, dest, n);
	memcpy(tmp + n, SUFFIX, sizeof SUFFIX);
	size_t len = n + sizeof SUFFIX - 1;
	int fd = -1, err = EEXIST;
	for (int attempt = 0; attempt < MAX_ATTEMPTS && fd < 0 && err == EEXIST; attempt++) {
		pick_name(tmp, len);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0)
			err = errno == EINTR ? EEXIST : errno;
	}
	if (fd < 0) {
		free(dst);
		free(tmp);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET,
		                   "cannot create a temporary file beside it: %s", qa_strerror(err));
	}
	t->tmp_path = tmp;
	t->dest_path = dst;
	t->fd = fd;
	t->slot = slot_take(tmp);
	return QA_OK;
}

/* fsync the directory holding path, ignoring every failure. */
static void sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	int dfd;
	if (!slash) {
		dfd = open(".", O_RDONLY | O_CLOEXEC);
	} else if (slash == path) {
		dfd = open("/", O_RDONLY | O_CLOEXEC);
	} else {
		size_t n = (size_t)(slash - path);
		char *dir = malloc(n + 1);
		if (!dir)
			return;
		memcpy(dir, path, n);
		dir[n] = '\0';
		dfd = open(dir, O_RDONLY | O_CLOEXEC);
		free(dir);
	}
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
}

enum qa_err qa_tmpfile_commit(struct qa_tmpfile *t, bool sync, struct qa_diag *d)
{
	if (!t || !t->tmp_path)
		return qa_diag_set(d, QA_ERR_USAGE, QA_NO_OFFSET,
		                   "qa_tmpfile_commit: no temporary file is pending");
	const char *what = NULL;
	int err = 0;
	if (t->fd >= 0) {
		if (sync && fsync(t->fd) != 0) {
			what = "cannot sync";
			err = errno;
		}
		int fd = t->fd;
		t->fd = -1;
		if (close(fd) != 0 && !what) {
			what = "cannot close";
			err = errno;
		}
	}
	if (!what && rename(t->tmp_path, t->dest_path) != 0) {
		what = "cannot rename into place";
		err = errno;
	}
	if (!what)
		slot_release(t->slot);
	if (what) {
		qa_tmpfile_abort(t);
		return qa_diag_set(d, QA_ERR_IO, QA_NO_OFFSET, "%s: %s", what, qa_strerror(err));
	}
	if (sync)
		sync_dir(t->dest_path);
	free(t->tmp_path);
	free(t->dest_path);
	reset(t);
	return QA_OK;
}

void qa_tmpfile_abort(struct qa_tmpfile *t)
{
	if (!t || !t->tmp_path)
		return;
	if (t->fd >= 0)
		close(t->fd);
	unlink(t->tmp_path);
	slot_release(t->slot);
	free(t->tmp_path);
	free(t->dest_path);
	reset(t);
}
