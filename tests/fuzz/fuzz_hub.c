/*
 * fuzz_hub.c - libFuzzer target for the hf:// URL parser and the Hub names
 * built from it (resolve and tree URLs, tag matching, split names).  Every
 * input must be accepted or refused cleanly; an accepted URL must give a
 * resolve URL that starts with the endpoint and holds no control character.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[1500];
	if (size >= sizeof s)
		size = sizeof s - 1;
	memcpy(s, data, size);
	s[size] = '\0';
	struct qa_hub_uri u;
	unsigned no, count;
	size_t stem;
	qa_hub_split_name(s, &no, &count, &stem);
	qa_hub_quant_matches(s, "Q4_K_M");
	if (qa_hub_parse(s, &u, NULL) != QA_OK)
		return 0;
	char *r = qa_hub_resolve_url(&u, NULL), *t = qa_hub_tree_url(&u);
	if (!r || !t || strncmp(r, qa_hub_endpoint(), strlen(qa_hub_endpoint())) != 0)
		abort();
	for (const char *c = r; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			abort(); /* a resolve URL must be fully quoted */
	free(r);
	free(t);
	return 0;
}
