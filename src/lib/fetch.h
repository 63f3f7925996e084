/*
 * fetch.h - the network side of quantaudit (libcurl).  This is the only
 * module that includes libcurl.  Remote artifacts are read later through
 * HTTP range requests behind struct qa_source; today the module reports the
 * linked libcurl for --version and reports.
 */
#ifndef QA_FETCH_H
#define QA_FETCH_H

/* The linked libcurl's version text, e.g. "libcurl/7.88.1 OpenSSL/3.0.19 ...". */
const char *qa_fetch_backend_version(void);

#endif
