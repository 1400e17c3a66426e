#!/usr/bin/env python3
"""PyTorch CPU baseline for peft-spark's LoRA training on all-MiniLM-L6-v2.

A self-contained BERT encoder in plain PyTorch (no transformers/peft packages needed) shaped like
all-MiniLM-L6-v2: 6 post-LN layers, hidden 384, 12 heads, intermediate 1536, exact erf GELU, a key-padding
mask, mean pooling over real tokens. Training puts a 2-class linear head on top, LoRA r=8 alpha=16 on
query and value (PEFT's init: A kaiming-uniform a=sqrt(5), B zeros), freezes every base weight and runs
AdamW on LoRA + head only. No dropout anywhere, as on the Java side (lora_dropout defaults to 0 there and the
encoder has none).

Input: JSONL of pre-tokenized examples {"input_ids": [...], "label": 0|1} written by the project's
ExportTokenIds tool, so both sides see identical tokens. Weights are random unless --weights names a
safetensors file with Hugging Face BertModel names (e.g. from ExportMiniLmWeights); throughput does not
depend on the values. Prints one JSON line. See README.md next to this file.
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import time

BUCKET_BATCHES = 50  # batches per length-sorted chunk, as dev.peftspark.datasets.Batcher
PAD_ID = 0

CONFIG = dict(vocab=30522, max_positions=512, type_vocab=2, hidden=384, layers=6, heads=12,
              intermediate=1536, ln_eps=1e-12)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="JSONL of {\"input_ids\": [...], \"label\": k}")
    p.add_argument("--mode", choices=["train", "embed"], default="train")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (and OMP/BLAS threads)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--bucket", action="store_true",
                   help="train: sort by length within chunks of 50 batches, then shuffle batch order (the Java "
                        "Batcher); embed: sort everything by length. Default: shuffled batches (HF Trainer), "
                        "file order for embed")
    p.add_argument("--steps", type=int, default=None,
                   help="timed batches (train default 60; embed default one full pass)")
    p.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    p.add_argument("--weights", help="optional safetensors file with HF BertModel names (bert. prefix allowed)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW decoupled decay (HF Trainer: 0.0)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--seed", type=int, default=13)
    return p.parse_args(argv)


def fail(msg):
    print(f"minilm_lora_bench: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------- data

def read_examples(path, max_positions):
    """List of (ids, label); any malformed line stops with the file, line and field named."""
    examples = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path} line {n}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{where}: not JSON ({e.msg} at column {e.colno})")
            if not isinstance(rec, dict):
                fail(f"{where}: expected an object with fields input_ids and label")
            ids, label = rec.get("input_ids"), rec.get("label")
            if not isinstance(ids, list) or not ids or not all(isinstance(t, int) for t in ids):
                fail(f"{where}: field 'input_ids' must be a non-empty list of integers")
            if len(ids) > max_positions:
                fail(f"{where}: {len(ids)} tokens, more than the {max_positions} positions of the model")
            if bad := [t for t in ids if not 0 <= t < CONFIG["vocab"]]:
                fail(f"{where}: token id {bad[0]} outside the vocabulary 0..{CONFIG['vocab'] - 1}")
            if label not in (0, 1):
                fail(f"{where}: field 'label' must be 0 or 1, got {label!r}")
            examples.append((ids, label))
    if not examples:
        fail(f"{path} holds no examples")
    return examples


def train_batches(examples, batch, bucket, rng):
    """Endless stream of index lists, epoch after epoch."""
    n = len(examples)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        if bucket:
            chunk = BUCKET_BATCHES * batch
            for s in range(0, n, chunk):
                order[s:s + chunk] = sorted(order[s:s + chunk], key=lambda i: len(examples[i][0]))  # stable
        batches = [order[s:s + batch] for s in range(0, n, batch)]
        if bucket:
            rng.shuffle(batches)
        yield from batches


def embed_batches(examples, batch, bucket):
    """Endless stream of index lists: one fixed order (by length with --bucket, else file order)."""
    order = list(range(len(examples)))
    if bucket:
        order.sort(key=lambda i: len(examples[i][0]))
    batches = [order[s:s + batch] for s in range(0, len(order), batch)]
    while True:
        yield from batches


def collate(torch, examples, members):
    """Pads to the batch's longest row. Returns ids [B,T], mask [B,T] (1 = real), labels [B], real tokens."""
    width = max(len(examples[i][0]) for i in members)
    ids = torch.full((len(members), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(members), width), dtype=torch.long)
    for row, i in enumerate(members):
        seq = examples[i][0]
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    labels = torch.tensor([examples[i][1] for i in members], dtype=torch.long)
    return ids, mask, labels, sum(len(examples[i][0]) for i in members)


# --------------------------------------------------------------------------------------------- model

def build_model(torch, weights_path):
    nn = torch.nn
    F = torch.nn.functional
    c = CONFIG

    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(c["vocab"], c["hidden"])
            self.position_embeddings = nn.Embedding(c["max_positions"], c["hidden"])
            self.token_type_embeddings = nn.Embedding(c["type_vocab"], c["hidden"])
            self.LayerNorm = nn.LayerNorm(c["hidden"], eps=c["ln_eps"])

        def forward(self, ids):
            pos = torch.arange(ids.shape[1], device=ids.device)
            # token type 0 everywhere (single sentences)
            x = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
            return self.LayerNorm(x)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(c["hidden"], c["hidden"])
            self.key = nn.Linear(c["hidden"], c["hidden"])
            self.value = nn.Linear(c["hidden"], c["hidden"])

        def forward(self, x, additive_mask):
            b, t, h = x.shape
            nh, hd = c["heads"], h // c["heads"]

            def heads(y):
                return y.view(b, t, nh, hd).transpose(1, 2)  # [B, nh, T, hd]

            q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + additive_mask  # mask: [B, 1, 1, T]
            ctx = scores.softmax(-1) @ v
            return ctx.transpose(1, 2).reshape(b, t, h)

    class DenseLayerNorm(nn.Module):
        """Post-LN residual block: LayerNorm(dense(x) + residual)."""

        def __init__(self, n_in):
            super().__init__()
            self.dense = nn.Linear(n_in, c["hidden"])
            self.LayerNorm = nn.LayerNorm(c["hidden"], eps=c["ln_eps"])

        def forward(self, x, residual):
            return self.LayerNorm(self.dense(x) + residual)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            setattr(self, "self", SelfAttention())  # HF name 'attention.self'
            self.output = DenseLayerNorm(c["hidden"])

        def forward(self, x, additive_mask):
            return self.output(getattr(self, "self")(x, additive_mask), x)

    class Intermediate(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(c["hidden"], c["intermediate"])

        def forward(self, x):
            return F.gelu(self.dense(x))  # exact erf form (approximate='none')

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = Attention()
            self.intermediate = Intermediate()
            self.output = DenseLayerNorm(c["intermediate"])

        def forward(self, x, additive_mask):
            a = self.attention(x, additive_mask)
            return self.output(self.intermediate(a), a)

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.ModuleList(Layer() for _ in range(c["layers"]))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = Embeddings()
            self.encoder = Stack()

        def forward(self, ids, mask):
            x = self.embeddings(ids)
            additive = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            for layer in self.encoder.layer:
                x = layer(x, additive)
            return x

    bert = Bert()
    if weights_path:
        load_safetensors_into(torch, bert, weights_path)
    return bert


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def add_lora(torch, bert, rank, alpha):
    """Wraps every attention query and value Linear in a LoRA adapter (PEFT lora.Linear, dropout 0)."""
    nn = torch.nn

    class LoraLinear(nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base_layer = base
            self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.scaling = alpha / rank

        def forward(self, x):
            return self.base_layer(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling

    for layer in bert.encoder.layer:
        attn = getattr(layer.attention, "self")
        attn.query = LoraLinear(attn.query)
        attn.value = LoraLinear(attn.value)


SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def load_safetensors_into(torch, bert, path):
    """Reads a safetensors file without the safetensors package; names/shapes must match BertModel exactly."""
    try:
        with open(path, "rb") as f:
            raw = bytearray(f.read())  # writable, so torch.frombuffer shares it without a warning
    except OSError as e:
        fail(f"cannot read weights {path}: {e.strerror}")
    if len(raw) < 8:
        fail(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if 8 + header_len > len(raw):
        fail(f"{path}: header length {header_len} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + header_len])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fail(f"{path}: header is not JSON ({e})")
    data = memoryview(raw)[8 + header_len:]
    expected = bert.state_dict()
    loaded = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        key = name[len("bert."):] if name.startswith("bert.") else name
        if key.startswith("pooler.") or key.endswith("position_ids"):
            continue  # not used for mean pooling
        if key not in expected:
            fail(f"{path}: unexpected tensor '{name}' (not a BertModel parameter of MiniLM-L6)")
        dtype = SAFETENSORS_DTYPES.get(info.get("dtype"))
        if dtype is None:
            fail(f"{path}: tensor '{name}' has dtype {info.get('dtype')}; supported: {sorted(SAFETENSORS_DTYPES)}")
        start, end = info["data_offsets"]
        t = torch.frombuffer(data[start:end], dtype=getattr(torch, dtype)).reshape(info["shape"])
        if tuple(t.shape) != tuple(expected[key].shape):
            fail(f"{path}: tensor '{name}' has shape {list(t.shape)}, expected {list(expected[key].shape)}")
        loaded[key] = t.to(torch.float32).clone()
    missing = sorted(set(expected) - set(loaded))
    if missing:
        fail(f"{path}: missing {len(missing)} tensors, e.g. {missing[:3]}")
    bert.load_state_dict(loaded, strict=True)


# ------------------------------------------------------------------------------------------- running

def blas_library():
    """The BLAS shared object actually mapped into this process (Debian picks it via update-alternatives)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return sorted(os.path.realpath(p) for p in libs)
    except OSError:
        return []


def run(args):
    import torch  # after the thread variables are set

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    examples = read_examples(args.data, CONFIG["max_positions"])
    bert = build_model(torch, args.weights)

    if args.mode == "train":
        add_lora(torch, bert, args.rank, args.alpha)
        for name, p in bert.named_parameters():
            p.requires_grad = "lora_" in name
        head = torch.nn.Linear(CONFIG["hidden"], 2)
        model = torch.nn.ModuleDict({"bert": bert, "head": head})
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
        stream = train_batches(examples, args.batch, args.bucket, random.Random(args.seed))
        steps = args.steps if args.steps is not None else 60
        losses = []

        def step(members):
            ids, mask, labels, real = collate(torch, examples, members)
            opt.zero_grad(set_to_none=True)
            logits = head(mean_pool(bert(ids, mask), mask))
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            return len(members), real, ids.numel()
    else:
        model = bert
        model.eval()
        trainable = []
        stream = embed_batches(examples, args.batch, args.bucket)
        steps = args.steps if args.steps is not None else math.ceil(len(examples) / args.batch)
        losses = None

        def step(members):
            ids, mask, _, real = collate(torch, examples, members)
            with torch.inference_mode():
                emb = torch.nn.functional.normalize(mean_pool(bert(ids, mask), mask), dim=-1)
            assert emb.shape == (len(members), CONFIG["hidden"])
            return len(members), real, ids.numel()

    for _ in range(args.warmup):
        step(next(stream))
    n_examples = n_tokens = n_padded = 0
    start = time.perf_counter()
    for _ in range(steps):
        e, t, padded = step(next(stream))
        n_examples += e
        n_tokens += t
        n_padded += padded
    seconds = time.perf_counter() - start

    out = {
        "torch": torch.__version__, "mode": args.mode, "threads": args.threads, "batch": args.batch,
        "bucket": args.bucket, "steps": steps,
        "examples_per_s": round(n_examples / seconds, 2),
        "tokens_per_s": round(n_tokens / seconds, 1),       # real (non-padding) tokens
        "step_ms": round(1000 * seconds / steps, 2),
        "padding_efficiency": round(n_tokens / n_padded, 4),  # real / padded positions
        "trainable": sum(p.numel() for p in trainable),
        "total": sum(p.numel() for p in model.parameters()),
        "weights": "pretrained" if args.weights else "random",
        "blas": blas_library(),
    }
    if losses:
        out["loss_first"] = round(losses[0], 4)
        out["loss_last"] = round(losses[-1], 4)
    print(json.dumps(out))


def main(argv=None):
    args = parse_args(argv)
    if args.threads < 1 or args.batch < 1 or (args.steps is not None and args.steps < 1) or args.warmup < 0:
        fail("--threads, --batch and --steps must be >= 1 and --warmup >= 0")
    # OpenMP and a threaded OpenBLAS read these when torch loads; torch.set_num_threads covers the rest.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    run(args)


if __name__ == "__main__":
    main()
