// tests/data/recipe/ecma-truth.cpp - the source of truth for check_recipe's test_pattern_syntax:
// how llama-quantize matches a --tensor-type pattern (tools/quantize/quantize.cpp lower-cases the
// pattern; src/llama-quant.cpp compiles it with std::regex, ECMAScript, and calls regex_search on
// the tensor name).  Not part of the build:
//   g++ -std=c++17 -o /tmp/ecma-truth ecma-truth.cpp && /tmp/ecma-truth
// prints one line per case: "{ PATTERN, NAME, MATCH }," as the C table in the test.
#include <algorithm>
#include <cstdio>
#include <regex>
#include <string>

int main()
{
	const char *cases[][2] = {
		{ "attn_q", "blk.0.attn_q.weight" },
		{ "blk\\.\\d+\\.ffn_(up|gate)", "blk.12.ffn_gate.weight" },
		{ "blk\\.\\d+\\.ffn_(up|gate)", "blk.12.ffn_down.weight" },
		{ "BLK\\.\\D\\.ATTN_V", "blk.3.attn_v.weight" },
		{ "BLK\\.\\D\\.ATTN_V", "blk.x.attn_v.weight" },
		{ "(?:attn_k|attn_v)\\.weight$", "blk.0.attn_v.weight" },
		{ "(?:attn_k|attn_v)\\.weight$", "blk.0.attn_v.bias" },
		{ "blk\\.[\\d]\\.attn_out\\w+", "blk.4.attn_output.weight" },
		{ "blk\\.[\\d]\\.attn_out\\w+", "blk.40.attn_output.weight" },
		{ "blk\\.[^\\d]", "blk.a" },
		{ "blk\\.[^\\d]", "blk.1" },
		{ "ffn_[\\w]+\\.weight", "blk.0.ffn_up.weight" },
		{ "\\W", "token_embd" },
		{ "\\S+_exps", "blk.0.ffn_up_exps.weight" },
		{ "blk\\.(\\d|1\\d)\\.", "blk.15.attn_q.weight" },
		{ "blk\\.(\\d|1\\d)\\.", "blk.25.attn_q.weight" },
		{ "^output", "output_norm.weight" },
		{ "^output\\.", "output_norm.weight" },
		{ "ffn_.*?_exps", "blk.0.ffn_gate_exps.weight" },
		{ "attn_[kv]\\b", "blk.0.attn_k.weight" },
		{ "attn_[kv]\\b", "blk.0.attn_kv_b.weight" },
		{ "blk\\.[1-3]\\.", "blk.2.ffn_up.weight" },
		{ "[\\-.]0[.]", "blk.0.ffn_up.weight" },
		{ "exps\\/", "blk.0.ffn_up_exps.weight" },
		{ "blk\\.\\d{2}\\.", "blk.7.attn_q.weight" },
		{ "blk\\.\\d{2}\\.", "blk.17.attn_q.weight" },
	};
	for (auto &c : cases) {
		std::string p(c[0]);
		std::transform(p.begin(), p.end(), p.begin(), ::tolower);
		bool m = std::regex_search(std::string(c[1]), std::regex(p));
		std::string esc;
		for (const char *q = c[0]; *q; q++) {
			if (*q == '\\' || *q == '"')
				esc += '\\';
			esc += *q;
		}
		printf("\t{ \"%s\", \"%s\", %s },\n", esc.c_str(), c[1], m ? "true" : "false");
	}
	return 0;
}
