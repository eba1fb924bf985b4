"""HF parity: load a `kstar export` directory with transformers' GPT2LMHeadModel.from_pretrained and compare its
logits with K*'s (kstar-logits.json beside the weights, from apps/trainer/scripts/hf-parity-logits.ts).

    python3 scripts/hf-parity.py EXPORTED_DIR > result.json
"""
import json
import platform
import sys

import torch
import transformers
from transformers import GPT2LMHeadModel

root = sys.argv[1]
ref = json.load(open(f"{root}/kstar-logits.json"))
model = GPT2LMHeadModel.from_pretrained(root, torch_dtype=torch.float32).eval()
tokens = torch.tensor(ref["tokens"], dtype=torch.long)
with torch.no_grad():
    hf = model(tokens).logits.double()
ks = torch.tensor(ref["logits"], dtype=torch.float64)
diff = (hf - ks).abs()
print(json.dumps({
    "benchmark": "hf-parity",
    "transformers": transformers.__version__,
    "torch": torch.__version__,
    "machine": {"platform": platform.platform(), "device": "cpu (torch, on the GPU host)"},
    "shape": list(hf.shape),
    "maxAbsDiff": diff.max().item(),
    "maxAbsLogit": ks.abs().max().item(),
    "argmaxEqual": bool((hf.argmax(-1) == ks.argmax(-1)).all().item()),
    "tiedLmHead": bool(torch.equal(model.lm_head.weight, model.transformer.wte.weight)),
}, indent=2))
