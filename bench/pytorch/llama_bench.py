#!/usr/bin/env python3
"""PyTorch CPU reference for `peft-spark bench --arch llama|gpt2`.

A minimal LLaMA (RMSNorm, RoPE rotate_half, grouped-query attention, SwiGLU, untied head) or GPT-2 (learned
positions, LayerNorm, tanh GELU, fused c_attn, tied head) in plain torch, random weights N(0, 0.02²), synthetic
token ids, causal attention computed as the full T×T square with a mask (as peft-spark does), next-token
cross-entropy, AdamW lr 1e-4 on the trainable tensors; --autocast bf16 runs forward and loss under CPU autocast.
Methods: lora (manual LoRA r, alpha 2r on the targeted linears, base frozen) or full. Prints one JSON line with tokens_per_s, step_ms, cpu_ms_per_step, trainable,
total, peak_rss_mb (VmHWM). Run with Debian's torch: /usr/bin/python3 bench/pytorch/llama_bench.py ... (README.md).
"""
import argparse
import json
import math
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=["llama", "gpt2"], default="llama")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=None)
    p.add_argument("--intermediate", type=int, default=None)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--targets", default=None, help="comma-separated module names (default q_proj,v_proj / c_attn)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--autocast", choices=["off", "bf16"], default="off",
                   help="bf16: forward and loss under torch.autocast('cpu', bfloat16) (peft-spark's --gemm-precision bf16)")
    return p.parse_args(argv)


ARGS = parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
import torch  # noqa: E402  (after the thread variables)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class LoraLinear(nn.Module):
    """y = x Wᵀ (+ b) + (alpha/r) · x Aᵀ Bᵀ; W frozen, A kaiming-uniform, B zeros (PEFT's init)."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features).uniform_(-1 / math.sqrt(base.in_features),
                                                                            1 / math.sqrt(base.in_features)))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


def linear(i, o, bias):
    lin = nn.Linear(i, o, bias=bias)
    nn.init.normal_(lin.weight, std=0.02)
    if bias:
        nn.init.zeros_(lin.bias)
    return lin


class RMSNorm(nn.Module):
    def __init__(self, h, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, a):
        super().__init__()
        h, self.nh, self.kv = a.hidden, a.heads, a.kv_heads
        self.hd = h // a.heads
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(h), RMSNorm(h)
        self.q_proj = linear(h, self.nh * self.hd, False)
        self.k_proj = linear(h, self.kv * self.hd, False)
        self.v_proj = linear(h, self.kv * self.hd, False)
        self.o_proj = linear(self.nh * self.hd, h, False)
        self.gate_proj, self.up_proj = linear(h, a.intermediate, False), linear(h, a.intermediate, False)
        self.down_proj = linear(a.intermediate, h, False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        y = self.input_layernorm(x)
        q = self.q_proj(y).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if self.kv != self.nh:
            k = k.repeat_interleave(self.nh // self.kv, dim=1)
            v = v.repeat_interleave(self.nh // self.kv, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        ctx = torch.softmax(s, dim=-1) @ v
        x = x + self.o_proj(ctx.transpose(1, 2).reshape(b, t, -1))
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


class Gpt2Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        h, self.nh = a.hidden, a.heads
        self.hd = h // a.heads
        self.ln_1, self.ln_2 = nn.LayerNorm(h, eps=1e-5), nn.LayerNorm(h, eps=1e-5)
        self.c_attn, self.attn_c_proj = linear(h, 3 * h, True), linear(h, h, True)
        self.c_fc, self.mlp_c_proj = linear(h, a.intermediate, True), linear(a.intermediate, h, True)

    def forward(self, x, cos, sin, mask):
        b, t, h = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(h, dim=-1)
        q, k, v = (z.view(b, t, self.nh, self.hd).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        ctx = torch.softmax(s, dim=-1) @ v
        x = x + self.attn_c_proj(ctx.transpose(1, 2).reshape(b, t, h))
        return x + self.mlp_c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class CausalLM(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.embed = nn.Embedding(a.vocab, a.hidden)
        nn.init.normal_(self.embed.weight, std=0.02)
        block = LlamaBlock if a.arch == "llama" else Gpt2Block
        self.layers = nn.ModuleList([block(a) for _ in range(a.layers)])
        if a.arch == "llama":
            self.norm, self.lm_head = RMSNorm(a.hidden), linear(a.hidden, a.vocab, False)
        else:
            self.wpe = nn.Embedding(max(a.seq, 1024), a.hidden)
            nn.init.normal_(self.wpe.weight, std=0.02)
            self.norm, self.lm_head = nn.LayerNorm(a.hidden, eps=1e-5), None   # tied to embed
        hd = a.hidden // a.heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.arange(a.seq).float()[:, None] * inv[None, :]
        self.cos, self.sin = torch.cat((ang.cos(), ang.cos()), -1), torch.cat((ang.sin(), ang.sin()), -1)
        self.mask = torch.full((a.seq, a.seq), -1e9).triu(1)

    def forward(self, ids):
        x = self.embed(ids)
        if self.a.arch == "gpt2":
            x = x + self.wpe(torch.arange(ids.shape[1]))
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, self.mask)
        x = self.norm(x)
        w = self.lm_head.weight if self.lm_head is not None else self.embed.weight
        logits = x[:, :-1].reshape(-1, x.shape[-1]) @ w.t()
        return F.cross_entropy(logits, ids[:, 1:].reshape(-1))


def inject_lora(model, targets, r):
    for layer in model.layers:
        for name in targets:
            attr = name.replace(".", "_") if hasattr(layer, name.replace(".", "_")) else name
            if not hasattr(layer, attr):
                sys.exit(f"error: --targets {name}: no such module in a {model.a.arch} layer")
            setattr(layer, attr, LoraLinear(getattr(layer, attr), r, 2.0 * r))


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1


def main(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    a.kv_heads = a.kv_heads or a.heads
    a.intermediate = a.intermediate or (4 * a.hidden if a.arch == "gpt2" else 256 * round(a.hidden * 8 / 3 / 256))
    model = CausalLM(a)
    if a.method == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        inject_lora(model, (a.targets or ("q_proj,v_proj" if a.arch == "llama" else "c_attn")).split(","), a.rank)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=torch.Generator().manual_seed(a.seed))

    def step():
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            loss = model(ids)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    cpu0, t0, each = time.process_time(), time.perf_counter(), []
    for _ in range(a.steps):
        s0 = time.perf_counter()
        loss = step()
        each.append(time.perf_counter() - s0)
    best = min(each)
    wall = (time.perf_counter() - t0) / a.steps
    cpu = (time.process_time() - cpu0) / a.steps
    print(json.dumps(dict(bench="pytorch-lm", arch=a.arch, method=a.method, batch=a.batch, seq=a.seq, steps=a.steps,
                          step_ms=wall * 1000, step_ms_best=best * 1000, cpu_ms_per_step=cpu * 1000,
                          step_ms_each=[round(x * 1000, 1) for x in each],
                          tokens_per_s=a.batch * a.seq / wall, trainable=sum(p.numel() for p in trainable),
                          total=sum(p.numel() for p in model.parameters()), loss=loss, peak_rss_mb=peak_rss_mb(),
                          threads=torch.get_num_threads(), torch=torch.__version__,
                          autocast=a.autocast)))


if __name__ == "__main__":
    main(ARGS)
