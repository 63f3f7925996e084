#define _GNU_SOURCE
/*
 * check_escape.c - the escaping policies of escape.h.  UTF-8 validity is
 * pinned against the Unicode standard's table of well-formed byte sequences
 * (Unicode 15, table 3-7), JSON output against jansson's parser (it must
 * load, and decode back to the sanitized bytes), and the terminal and
 * markdown policies against the rules escape.h states.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "escape.h"
#include "json_scan.h"
#include "strbuf.h"

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define S(lit) lit, sizeof(lit) - 1

/* Unicode table 3-7: well-formed and ill-formed sequences. */
static const struct {
	const char *s;
	size_t len;
	int valid;
} utf8[] = {
	{ S(""), 1 },
	{ S("plain ascii"), 1 },
	{ S("a\0b"), 1 },                       /* NUL is a character */
	{ S("\xc2\x80"), 1 },                   /* U+0080 */
	{ S("\xdf\xbf"), 1 },                   /* U+07FF */
	{ S("\xe0\xa0\x80"), 1 },               /* U+0800 */
	{ S("\xed\x9f\xbf"), 1 },               /* U+D7FF */
	{ S("\xee\x80\x80"), 1 },               /* U+E000 */
	{ S("\xf0\x90\x80\x80"), 1 },           /* U+10000 */
	{ S("\xf4\x8f\xbf\xbf"), 1 },           /* U+10FFFF */
	{ S("\xc0\xaf"), 0 },                   /* overlong '/' */
	{ S("\xc1\xbf"), 0 },                   /* overlong */
	{ S("\xe0\x9f\xbf"), 0 },               /* overlong U+07FF */
	{ S("\xf0\x8f\xbf\xbf"), 0 },           /* overlong U+FFFF */
	{ S("\xed\xa0\x80"), 0 },               /* surrogate U+D800 */
	{ S("\xed\xbf\xbf"), 0 },               /* surrogate U+DFFF */
	{ S("\xf4\x90\x80\x80"), 0 },           /* U+110000 */
	{ S("\xf5\x80\x80\x80"), 0 },
	{ S("\xff"), 0 },
	{ S("\x80"), 0 },                       /* lone continuation */
	{ S("\xe2\x82"), 0 },                   /* truncated */
	{ S("ok\xc3"), 0 },                     /* truncated at the end */
};

START_TEST(utf8_table)
{
	ck_assert_int_eq(qa_utf8_valid(utf8[_i].s, utf8[_i].len), utf8[_i].valid);
	/* sanitizing gives valid UTF-8, unchanged when the input was valid */
	struct qa_sb b = { 0 };
	qa_utf8_sanitize(&b, utf8[_i].s, utf8[_i].len);
	ck_assert(!b.oom);
	ck_assert(qa_utf8_valid(b.p ? b.p : "", b.len));
	if (utf8[_i].valid) {
		ck_assert_uint_eq(b.len, utf8[_i].len);
		ck_assert(b.len == 0 || memcmp(b.p, utf8[_i].s, b.len) == 0);
	} else {
		ck_assert_ptr_nonnull(memmem(b.p, b.len, "\xef\xbf\xbd", 3));
	}
	qa_sb_free(&b);
}
END_TEST

/* The terminal policy, case by case. */
static const struct {
	const char *in;
	size_t len;
	const char *out;
} term[] = {
	{ S("blk.0.attn_q.weight"), "blk.0.attn_q.weight" },
	{ S("a\0x"), "a\\x00x" },
	{ S("a\0y"), "a\\x00y" },
	{ S("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07" },   /* OSC title sequence */
	{ S("\x1b[31mred"), "\\x1b[31mred" },
	{ S("back\\slash"), "back\\\\slash" },
	{ S("\\x41"), "\\\\x41" },                          /* an escape stays unambiguous */
	{ S("tab\there"), "tab\\x09here" },
	{ S("del\x7f"), "del\\x7f" },
	{ S("\xc2\x9b" "31m"), "\\xc2\\x9b31m" },           /* C1 CSI */
	{ S("caf\xc3\xa9"), "caf\xc3\xa9" },                /* valid UTF-8 kept */
	{ S("\xff\xfe"), "\\xff\\xfe" },
	{ S(""), "" },
};

START_TEST(term_cases)
{
	struct qa_sb b = { 0 };
	qa_escape_term(&b, term[_i].in, term[_i].len);
	ck_assert(!b.oom);
	ck_assert_str_eq(b.p ? b.p : "", term[_i].out);
	/* no control byte survives */
	for (size_t k = 0; k < b.len; k++)
		ck_assert(!((unsigned char)b.p[k] < 0x20 || b.p[k] == 0x7f));
	char buf[256];
	ck_assert_str_eq(qa_escape_term_buf(buf, sizeof buf, term[_i].in, term[_i].len), term[_i].out);
	qa_sb_free(&b);
}
END_TEST

/* core: a library message keeps the escapes the library wrote into it (a
 * name escaped with qa_escape_term_buf reads the same after cli_fail's
 * qa_escape_msg_buf), while a raw control byte in it is still escaped. */
START_TEST(msg_keeps_escapes)
{
	char name[64], msg[128], out[128];
	qa_escape_term_buf(name, sizeof name, S("a\\b\x1b\0c"));
	ck_assert_str_eq(name, "a\\\\b\\x1b\\x00c");
	snprintf(msg, sizeof msg, "duplicate metadata key \"%s\"\x07", name);
	ck_assert_str_eq(qa_escape_msg_buf(out, sizeof out, msg, strlen(msg)),
	                 "duplicate metadata key \"a\\\\b\\x1b\\x00c\"\\x07");
	/* the _str forms are the length forms on a C string, and NULL is nothing */
	struct qa_sb a = { 0 }, b = { 0 };
	qa_escape_md_str(&a, "x*\x1b");
	qa_escape_md(&b, S("x*\x1b"));
	ck_assert_str_eq(a.p, b.p);
	ck_assert_str_eq(a.p, "x\\*\\x1b");
	qa_escape_name(&a, true, "p|q");
	qa_escape_name(&a, false, "p|\x9b");
	qa_escape_md_str(&a, NULL);
	qa_escape_term_str(&a, NULL);
	ck_assert_str_eq(a.p, "x\\*\\x1b`p\\|q`p|\\x9b");
	qa_sb_free(&a);
	qa_sb_free(&b);
}
END_TEST

START_TEST(term_distinct)
{
	struct qa_sb a = { 0 }, b = { 0 };
	qa_escape_term(&a, S("a\0x"));
	qa_escape_term(&b, S("a\0y"));
	ck_assert_str_ne(a.p, b.p);
	qa_sb_free(&a);
	qa_sb_free(&b);
}
END_TEST

START_TEST(md_and_code)
{
	struct qa_sb b = { 0 };
	qa_escape_md(&b, S("*x*_[l](u)|#\x1b\\"));
	ck_assert_str_eq(b.p, "\\*x\\*\\_\\[l\\](u)\\|\\#\\x1b\\\\");
	qa_sb_free(&b);
	qa_escape_code(&b, S("a`b|c\x1b"));
	ck_assert_str_eq(b.p, "`a'b\\|c\\x1b`");
	qa_sb_free(&b);
}
END_TEST

/* JSON: every table entry gives a literal jansson loads, decoding to the
 * sanitized bytes. */
START_TEST(json_valid)
{
	struct qa_sb lit = { 0 }, want = { 0 };
	qa_escape_json(&lit, utf8[_i].s, utf8[_i].len);
	qa_utf8_sanitize(&want, utf8[_i].s, utf8[_i].len);
	json_error_t je;
	json_t *v = json_loadb(lit.p, lit.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	ck_assert_msg(v != NULL, "not JSON: %s (%s)", lit.p, je.text);
	ck_assert(json_is_string(v));
	ck_assert_uint_eq(json_string_length(v), want.len);
	ck_assert(want.len == 0 || memcmp(json_string_value(v), want.p, want.len) == 0);
	json_decref(v);
	qa_sb_free(&lit);
	qa_sb_free(&want);
}
END_TEST

/* qa_json_text_set: the _hex sibling only for invalid UTF-8, with the exact bytes. */
START_TEST(json_hex_sibling)
{
	json_t *o = json_object();
	ck_assert_int_eq(qa_json_text_set(o, "name", utf8[_i].s, utf8[_i].len), 0);
	json_t *hex = json_object_get(o, "name_hex");
	if (utf8[_i].valid) {
		ck_assert_ptr_null(hex);
	} else {
		ck_assert_ptr_nonnull(hex);
		const char *h = json_string_value(hex);
		ck_assert_uint_eq(strlen(h), 2 * utf8[_i].len);
		for (size_t k = 0; k < utf8[_i].len; k++) {
			char two[3];
			snprintf(two, sizeof two, "%02x", (unsigned char)utf8[_i].s[k]);
			ck_assert(memcmp(h + 2 * k, two, 2) == 0);
		}
	}
	/* the document dumps and loads back */
	char *text = json_dumps(o, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	json_error_t je;
	json_t *back = json_loads(text, JSON_ALLOW_NUL, &je);
	ck_assert_msg(back != NULL, "%s", je.text);
	json_decref(back);
	free(text);
	json_decref(o);
}
END_TEST

START_TEST(xml_cases)
{
	struct qa_sb b = { 0 };
	qa_escape_xml(&b, S("<a href=\"x\">&'\x01\xff</a>"));
	ck_assert_str_eq(b.p, "&lt;a href=&quot;x&quot;&gt;&amp;&apos;\xef\xbf\xbd\xef\xbf\xbd&lt;/a&gt;");
	qa_sb_free(&b);
}
END_TEST

/* limits: the fixed-buffer form cuts at an escape boundary and says so. */
static const size_t caps[] = { 1, 2, 4, 5, 6, 8, 9, 12 };

START_TEST(term_buf_cut)
{
	char buf[16];
	memset(buf, 'Z', sizeof buf);
	const char *in = "\x1b\x1b\x1b\x1b\x1b\x1b";
	qa_escape_term_buf(buf, caps[_i], in, 6);
	size_t n = strlen(buf);
	ck_assert_uint_lt(n, caps[_i]);
	ck_assert_int_eq(buf[caps[_i]], 'Z'); /* nothing written past cap */
	/* what is there is whole escapes, then "..." when anything was cut */
	size_t k = 0;
	while (k + 4 <= n && memcmp(buf + k, "\\x1b", 4) == 0)
		k += 4;
	if (caps[_i] >= 4)
		ck_assert_str_eq(buf + k, "...");
}
END_TEST

START_TEST(sb_max)
{
	struct qa_sb b = { 0 };
	qa_sb_putn(&b, "x", 1);
	b.len = QA_SB_MAX - 1; /* pretend the buffer is at its maximum */
	size_t cap = b.cap;
	qa_sb_putn(&b, "y", 1);
	ck_assert(b.oom);
	ck_assert_uint_eq(b.cap, cap);
	b.len = 0;
	qa_sb_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("escape");
	TCase *core = tcase_create("core");
	tcase_add_loop_test(core, term_cases, 0, LEN(term));
	tcase_add_test(core, term_distinct);
	tcase_add_test(core, msg_keeps_escapes);
	tcase_add_test(core, md_and_code);
	tcase_add_test(core, xml_cases);
	tcase_add_loop_test(core, json_hex_sibling, 0, LEN(utf8));
	suite_add_tcase(s, core);
	TCase *limits = tcase_create("limits");
	tcase_add_loop_test(limits, term_buf_cut, 0, LEN(caps));
	tcase_add_test(limits, sb_max);
	suite_add_tcase(s, limits);
	TCase *bad = tcase_create("malformed");
	tcase_add_loop_test(bad, utf8_table, 0, LEN(utf8));
	tcase_add_loop_test(bad, json_valid, 0, LEN(utf8));
	suite_add_tcase(s, bad);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
