/*
 * junit.h - a gate (policy.h) as JUnit XML, in the form dorny/test-reporter
 * (java-junit), mikepenz/action-junit-report and
 * EnricoMi/publish-unit-test-result-action read.
 *
 * One <testsuite> per suite of the gate (an input artifact, or a model for
 * shape-swap), one <testcase classname="CLASS" name="TENSOR"> per item; a
 * failing item carries <failure message="..." type="STATUS">, an ignored
 * one <skipped/>, a warned one passes with the warning in <system-out>.
 * Suite and root counts are those of the cases.  Times are "0": the file is
 * deterministic.  Names are escaped for XML; bytes that are not valid UTF-8
 * or are not allowed in XML 1.0 become '?'.
 */
#ifndef QA_JUNIT_H
#define QA_JUNIT_H

#include "err.h"
#include "policy.h"

/*
 * Write g as JUnit XML to path, atomically (tmpfile.h); name is the root
 * <testsuites> name (e.g. "quantaudit diff").  Errors: QA_ERR_IO.
 */
enum qa_err qa_junit_write(const struct qa_gate *g, const char *name, const char *path,
                           struct qa_diag *d);

#endif
