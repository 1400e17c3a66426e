# Writes a Hugging Face LLaMA directory of TinyLlama-1.1B's shape with random BF16 weights (N(0, 0.02^2), norms 1),
# a toy WordLevel tokenizer.json, and train.txt beside it (bench/qlora-train-memory.sh); usage: python3 write-tinyllama-dir.py OUT_DIR
import json, os, struct, sys
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
V, H, I, L, NH, KV = 32000, 2048, 5632, 22, 32, 4
hd = H // NH
shapes = [("model.embed_tokens.weight", (V, H))]
for i in range(L):
    p = f"model.layers.{i}."
    shapes += [(p + "self_attn.q_proj.weight", (H, H)), (p + "self_attn.k_proj.weight", (KV * hd, H)),
               (p + "self_attn.v_proj.weight", (KV * hd, H)), (p + "self_attn.o_proj.weight", (H, H)),
               (p + "mlp.gate_proj.weight", (I, H)), (p + "mlp.up_proj.weight", (I, H)),
               (p + "mlp.down_proj.weight", (H, I)),
               (p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,))]
shapes += [("model.norm.weight", (H,)), ("lm_head.weight", (V, H))]
header, offset = {"__metadata__": {"format": "pt"}}, 0
for name, shape in shapes:
    n = int(np.prod(shape)) * 2
    header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
    offset += n
hb = json.dumps(header).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
rng = np.random.default_rng(1)
with open(os.path.join(out, "model.safetensors.tmp"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)))
    f.write(hb)
    for name, shape in shapes:
        if name.endswith("norm.weight"):
            x = np.ones(shape, dtype=np.float32)
        else:
            x = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        f.write((x.view(np.uint32) >> 16).astype("<u2").tobytes())
os.replace(os.path.join(out, "model.safetensors.tmp"), os.path.join(out, "model.safetensors"))
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": H,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV,
           "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "torch_dtype": "bfloat16", "initializer_range": 0.02,
           "_name_or_path": "random-tinyllama-shape"}, open(os.path.join(out, "config.json"), "w"), indent=1)
words = ["the", "a", "big", "small", "cat", "dog", "sat", "ran", "on", "mat", "rug"]
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
special = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                        "normalized": False, "special": True}
json.dump({"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
           "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
           "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
           "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": vocab}},
          open(os.path.join(out, "tokenizer.json"), "w"))
json.dump({"eos_token": "</s>"}, open(os.path.join(out, "tokenizer_config.json"), "w"))
r = np.random.default_rng(2)
with open(os.path.join(os.path.dirname(out.rstrip("/")), "train.txt"), "w") as f:
    for _ in range(200):
        f.write(" ".join(r.choice(["the", "a"]) + " " + r.choice(["big", "small"]) + " " + r.choice(["cat", "dog"]) + " "
                + r.choice(["sat", "ran"]) + " on the " + r.choice(["mat", "rug"]) for _ in range(3)) + "\n")
print("params", sum(int(np.prod(s)) for _, s in shapes), "bytes", offset)
