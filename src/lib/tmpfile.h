/*
 * tmpfile.h - writing a file atomically through a temporary file beside it.
 *
 * Every output of the library (GGUF artifacts, synthetic checkpoints and
 * their config.json, reports, plots) is written the same way: a fresh file
 * named "DEST.tmp.XXXXXX" is created in the destination's directory, filled,
 * and renamed over DEST only when it is complete, so a reader never sees a
 * half-written DEST and a failure leaves DEST as it was.  This module owns
 * the naming, the permissions, the rename and the cleanup of that pattern.
 *
 * Lifecycle: qa_tmpfile_open() makes the temporary file pending; it stops
 * being pending when qa_tmpfile_commit() renames it into place or removes
 * it, or when qa_tmpfile_abort() removes it.  Abort is always safe to call,
 * also on a struct whose open failed, after a commit, or twice, so callers
 * can call it unconditionally on their cleanup path.
 */
#ifndef QA_TMPFILE_H
#define QA_TMPFILE_H

#include <stdbool.h>

#include "err.h"

/*
 * A pending temporary file.  The fields may be read while pending: fd is
 * the open write descriptor and tmp_path the temporary file's name (for
 * messages about writes to it).  A caller may hand fd to fdopen(); it then
 * closes the stream itself before commit or abort and sets fd to -1, so
 * that commit only renames and abort only removes the file.  A struct
 * zeroed with memset or calloc counts as "not pending".
 */
struct qa_tmpfile {
	char *tmp_path;   /* owned; NULL when nothing is pending */
	char *dest_path;  /* owned copy of the destination */
	int fd;           /* write descriptor, or -1 once the caller closed it */
	int slot;         /* private: its entry for qa_tmpfile_remove_pending, 0 if none */
};

/*
 * Create a new empty temporary file beside dest (same directory, name
 * "DEST.tmp.XXXXXX") and make t pending on it, with fd open for writing
 * (close-on-exec).  The file gets the permissions of an ordinary new file,
 * 0666 less the process umask (and any default ACL of the directory).  dest
 * is copied; it need not exist yet.
 *
 * Errors: QA_ERR_USAGE for a NULL t or an empty dest, QA_ERR_NOMEM, and
 * QA_ERR_IO "cannot create a temporary file beside it: <reason>" when the
 * directory refuses a new file (missing, not writable, name too long).  The
 * message does not repeat the path: the caller knows it.  On any error
 * nothing is created and t is left not pending.
 */
QA_WARN_UNUSED
enum qa_err qa_tmpfile_open(struct qa_tmpfile *t, const char *dest, struct qa_diag *d);

/*
 * Finish t: when sync is true, flush the file to stable storage with fsync
 * (if t still owns fd); close fd; rename the temporary file over the
 * destination, replacing any file there; then, when sync is true, also
 * sync the directory so the rename itself is durable (best effort).
 *
 * Whatever the outcome t ends not pending and owns nothing: on success the
 * data is at the destination; on failure the temporary file is removed and
 * the destination is untouched.  Errors: QA_ERR_USAGE when t is not
 * pending, QA_ERR_IO "cannot sync: ...", "cannot close: ..." or
 * "cannot rename into place: ..." (no path in the message).
 */
QA_WARN_UNUSED
enum qa_err qa_tmpfile_commit(struct qa_tmpfile *t, bool sync, struct qa_diag *d);

/*
 * Give up on t: close fd (if still owned) and remove the temporary file,
 * leaving the destination untouched, and release what t owns.  A no-op when
 * t is NULL or not pending, so it is safe after a failed open, after
 * commit, and when called twice.
 */
void qa_tmpfile_abort(struct qa_tmpfile *t);

/*
 * Remove every pending temporary file of the process (up to 32 at a time
 * are tracked, with names shorter than 4096 bytes).  Async-signal-safe: it
 * only reads atomics and calls unlink(), so a program's SIGINT or SIGTERM
 * handler may call it before re-raising the signal, and an interrupted run
 * leaves no DEST.tmp.* behind.  The library installs no handler itself.
 */
void qa_tmpfile_remove_pending(void);

#endif
