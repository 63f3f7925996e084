/*
 * fetch.c - libcurl glue.
 */
#include "fetch.h"

#include <stdio.h>

#include <curl/curl.h>

const char *qa_fetch_backend_version(void)
{
	static char buf[64];
	if (!buf[0]) {
		const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
		snprintf(buf, sizeof buf, "libcurl %s", v && v->version ? v->version : "unknown");
	}
	return buf;
}
