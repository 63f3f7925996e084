/*
 * consumer.c - a program built against the installed libquantaudit through
 * pkg-config (make installcheck, run by make distcheck): it must compile
 * with only <quantaudit/quantaudit.h>, link, and hash a file.
 */
#include <stdio.h>
#include <stdlib.h>

#include <quantaudit/quantaudit.h>

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	struct qa_manifest *m;
	struct qa_diag d;
	qa_diag_clear(&d);
	if (qa_manifest_compute(argv[1], false, false, 1, &m, &d) != QA_OK) {
		fprintf(stderr, "consumer: %s\n", d.msg);
		return 1;
	}
	char *json = qa_manifest_json_text(m);
	int ok = json != NULL && m->n > 0;
	free(json);
	qa_manifest_free(m);
	return ok ? 0 : 1;
}
