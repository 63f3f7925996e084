#!/usr/bin/python3
"""hf2gguf.py - a small stand-in for llama.cpp's convert_hf_to_gguf.py.

convert_hf_to_gguf.py needs torch and transformers, which are not available
here.  This writes the same GGUF for the checkpoints quantaudit synthesizes,
with llama.cpp's own gguf-py (tensor name map, bf16 rounding, writer) and
numpy, following llama.cpp's conversion/*.py:

  qwen3moe  (conversion/qwen.py Qwen2MoeModel.modify_tensors): the per-expert
            tensors model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight
            are held until all 3 x n_experts of a layer are seen, then
            written as three stacked 3-D tensors in the order down, gate, up
            (torch.stack(dim=0): GGUF ne = [in, out, n_expert]).
  gpt-oss   (conversion/gpt_oss.py): self_attn.sinks gets ".weight";
            mlp.experts.gate_up_proj [E, in, 2*ffn] is transposed to
            [E, 2*ffn, in] and split into gate = rows 0::2, up = rows 1::2
            (gate written first); gate_up_proj_bias splits the same way along
            its last axis; down_proj [E, ffn, in] is transposed to
            [E, in, ffn].  The MXFP4 *_blocks/*_scales form is not handled.

Types follow ModelBase.prepare_tensors for --outtype bf16: 1-D tensors,
*_norm.weight, ffn_gate_inp (router) and everything not ending in ".weight"
are f32, the rest bf16.  The vocabulary is a placeholder (<tN> tokens,
gpt2 model), as in ../shared/oracle/real.

usage: hf2gguf.py MODEL_DIR OUT.gguf [--name NAME] [--transpose-expert TENSOR:E ...]

--transpose-expert blk.1.ffn_down_exps.weight:2 writes expert 2's slice of
that tensor transposed (its in,out data under the out,in shape), as a wrong
exporter would; the slice must be square-compatible (rows*cols kept).
Run with PYTHONPATH=~/.cache/llama-cpp-ref/src/gguf-py and Debian's
python3-numpy (/usr/bin/python3).
"""
import json
import os
import sys

import numpy as np
import gguf

ARCHS = {
    # model_type -> (gguf MODEL_ARCH, expert count key, used key, expert ffn key)
    "qwen3_moe": (gguf.MODEL_ARCH.QWEN3MOE, "num_experts", "num_experts_per_tok", "moe_intermediate_size"),
    "gpt_oss": (gguf.MODEL_ARCH.GPT_OSS, "num_local_experts", "num_experts_per_tok", "intermediate_size"),
}


def read_safetensors(path):
    """Tensors of one safetensors file in header (file) order, as float32 arrays."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    base = 8 + n
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = np.asarray(raw[base + a:base + b])
        dt = info["dtype"]
        if dt == "BF16":
            arr = (buf.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = buf.view(np.float16).astype(np.float32)
        elif dt == "F32":
            arr = buf.view(np.float32).copy()
        else:
            raise SystemExit("hf2gguf: %s: dtype %s not handled" % (name, dt))
        out.append((name, arr.reshape(info["shape"])))
    return out


def modify_qwen3moe(state, name, data, bid, n_experts):
    """Qwen2MoeModel.modify_tensors: stack the per-expert tensors of a layer."""
    if "experts" not in name:
        yield name, data
        return
    held = state.setdefault(bid, {})
    held[name] = data
    if len(held) < n_experts * 3:
        return
    for w in ("down_proj", "gate_proj", "up_proj"):
        datas = [held.pop("model.layers.%d.mlp.experts.%d.%s.weight" % (bid, x, w)) for x in range(n_experts)]
        yield "model.layers.%d.mlp.experts.%s.weight" % (bid, w), np.stack(datas, axis=0)


def modify_gpt_oss(state, name, data, bid, n_experts):
    """GptOssModel.filter_tensors + modify_tensors for the bf16 (not MXFP4) form."""
    if "sinks" in name:
        name += ".weight"
    if "down_proj" in name:
        if name.endswith("_bias"):
            name = name.replace("down_proj_bias", "down_proj.bias")
        else:
            name = name.replace("down_proj", "down_proj.weight")
            data = np.swapaxes(data, -1, -2)
    if "gate_up_proj" in name:
        if name.endswith("_bias"):
            yield name.replace("gate_up_proj_bias", "gate_proj.bias"), data[..., 0::2]
            yield name.replace("gate_up_proj_bias", "up_proj.bias"), data[..., 1::2]
        else:
            data = np.swapaxes(data, -1, -2)
            yield name.replace("gate_up_proj", "gate_proj.weight"), data[:, 0::2, :]
            yield name.replace("gate_up_proj", "up_proj.weight"), data[:, 1::2, :]
        return
    yield name, data


def main(argv):
    args = argv[1:]
    name = "quantaudit synthetic MoE reference"
    transposes = []
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--name":
            name = args[i + 1]
            i += 2
        elif args[i] == "--transpose-expert":
            t, e = args[i + 1].rsplit(":", 1)
            transposes.append((t, int(e)))
            i += 2
        else:
            pos.append(args[i])
            i += 1
    if len(pos) != 2:
        raise SystemExit(__doc__)
    model_dir, out_path = pos
    with open(os.path.join(model_dir, "config.json")) as f:
        hp = json.load(f)
    mt = hp["model_type"]
    if mt not in ARCHS:
        raise SystemExit("hf2gguf: model_type %s not handled (%s)" % (mt, ", ".join(ARCHS)))
    arch, k_exp, k_used, k_ffn = ARCHS[mt]
    n_layer = hp["num_hidden_layers"]
    n_experts = hp[k_exp]
    tmap = gguf.get_tensor_name_map(arch, n_layer)
    modify = modify_qwen3moe if arch == gguf.MODEL_ARCH.QWEN3MOE else modify_gpt_oss

    w = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[arch])
    w.add_name(name)
    w.add_block_count(n_layer)
    w.add_context_length(hp["max_position_embeddings"])
    w.add_embedding_length(hp["hidden_size"])
    w.add_feed_forward_length(hp["intermediate_size"])
    w.add_head_count(hp["num_attention_heads"])
    w.add_head_count_kv(hp["num_key_value_heads"])
    w.add_rope_freq_base(hp["rope_theta"])
    w.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    w.add_expert_count(n_experts)
    w.add_expert_used_count(hp[k_used])
    w.add_key_length(hp["head_dim"])
    w.add_value_length(hp["head_dim"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    if arch == gguf.MODEL_ARCH.GPT_OSS:
        w.add_sliding_window(hp["sliding_window"])
    w.add_expert_feed_forward_length(hp[k_ffn])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(["<t%d>" % t for t in range(hp["vocab_size"])])
    w.add_token_types([1] * hp["vocab_size"])

    shards = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    state = {}
    for shard in shards:
        for src, data in read_safetensors(os.path.join(model_dir, shard)):
            if src.endswith((".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")):
                continue
            bid = next((int(p) for p in src.split(".") if p.isdecimal()), None)
            for hf, arr in modify(state, src, data, bid, n_experts):
                new = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
                if new is None:
                    raise SystemExit("hf2gguf: cannot map %s" % hf)
                arr = np.ascontiguousarray(arr, dtype=np.float32)
                for t, e in transposes:
                    if t == new:
                        s = arr[e]
                        arr[e] = np.ascontiguousarray(s.T).reshape(s.shape)
                f32 = (arr.ndim <= 1 or new.endswith("_norm.weight") or ".ffn_gate_inp." in new
                       or not new.endswith(".weight"))
                if f32:
                    w.add_tensor(new, arr)
                else:
                    w.add_tensor(new, gguf.quants.quantize(arr, gguf.GGMLQuantizationType.BF16),
                                 raw_dtype=gguf.GGMLQuantizationType.BF16)
    left = [k for d in state.values() for k in d]
    if left:
        raise SystemExit("hf2gguf: unprocessed experts: %s" % left)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv)
