#!/usr/bin/env python3
"""PyTorch baseline for K*'s GPU benchmark: the same GPT-2 shape (12 layers, 768 wide, 12 heads, vocabulary 50257,
tied embeddings, GELU tanh MLP, pre-LayerNorm), T = 1024, batch 8, on random tokens, trained with fused AdamW and SDPA
causal attention. One row per precision: float32 without TF32, TF32 matmuls, bf16 autocast. Prints a table and
writes JSON:  python3 scripts/torch-baseline.py OUT.json [--steps 20] [--precisions fp32,tf32,bf16]"""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--seq", type=int, default=1024)
p.add_argument("--precisions", default="fp32,tf32,bf16")
args = p.parse_args()

V, D, H, L = 50257, 768, 12, 12


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.fc, self.out = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, D), nn.Embedding(args.seq, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.ln = nn.LayerNorm(D)
        for m in self.modules():  # GPT-2's initialisation (K*'s GPT uses the same)
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.ln(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, V).float(), targets.reshape(-1))


rows = []
for precision in args.precisions.split(","):
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.manual_seed(0)
    model = GPT().cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    g = torch.Generator(device="cuda").manual_seed(1)
    torch.cuda.reset_peak_memory_stats()
    losses, times = [], []
    for step in range(args.steps):
        idx = torch.randint(0, V, (args.batch, args.seq + 1), device="cuda", generator=g)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(idx[:, :-1], idx[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    steady = times[args.warmup:]
    tokens = args.batch * args.seq
    row = {
        "name": f"pytorch-{precision}",
        "precision": precision,
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        "tokensPerSecond": len(steady) * tokens / sum(steady),
        "tokensPerSecondAllSteps": len(times) * tokens / sum(times),
        "peakGpuBytes": torch.cuda.max_memory_allocated(),
        "lossAtStart": losses[0],
        "lossAtEnd": losses[-1],
    }
    rows.append(row)
    print(f"{row['name']:<16} {row['tokensPerSecond']:>10,.0f} tok/s  peak {row['peakGpuBytes'] / 2**30:6.2f} GiB  loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
    del model, opt
    torch.cuda.empty_cache()

json.dump(
    {
        "kind": "torch-baseline",
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0),
        "config": {"layers": L, "width": D, "heads": H, "vocab": V, "attention": "sdpa causal", "optimizer": "AdamW fused"},
        "rows": rows,
    },
    open(args.out, "w"),
    indent=2,
)
