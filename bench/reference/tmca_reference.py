#!/usr/bin/python3
"""A PyTorch implementation of ../../../shared/docs/tmca-spec.md, for side-by-side timing only.

The engine never needs PyTorch to build, run or test; this file exists so that `bench/step-vs-pytorch.sh`
can time the same training step in both in one command. `--check FILE` first verifies this implementation
against a model oracle (loss terms), so the comparison is like for like.

  /usr/bin/python3 tmca_reference.py --preset small --batch 8 --steps 10          # time a training step
  /usr/bin/python3 tmca_reference.py --check ../../../shared/oracles/model-tmca-full.safetensors
"""
import argparse, json, math, resource, struct, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "nano": dict(image_size=64, dims=[16, 32, 64, 128], depths=[1, 1, 1, 1], text_hidden=32, text_layers=2, text_heads=2,
                 text_intermediate=64, max_positions=32, align_dim=32, head_channels=8),
    "small": dict(image_size=128, dims=[24, 48, 96, 192], depths=[1, 1, 2, 1], text_hidden=64, text_layers=2, text_heads=2,
                  text_intermediate=128, max_positions=64, align_dim=64, head_channels=12),
    # paper scale, as TmcaConfig.Tiny: ConvNeXt-T image encoder, CXR-BERT-sized text encoder
    "tiny": dict(image_size=224, dims=[96, 192, 384, 768], depths=[3, 3, 9, 3], text_hidden=768, text_layers=12, text_heads=12,
                 text_intermediate=3072, max_positions=512, align_dim=256, head_channels=24),
}
COMMON = dict(in_channels=3, vocab_size=30522, text_len=24, token_outs=[24, 12, 9], self_heads=1, cross_heads=4)
FLAGS = dict(text=True, alignment="target", levels=[0, 1, 2, 3], lgte=True, pixel_loss=True, lambda_nce=0.05, lambda_pix=0.5,
             tau_init=0.07, tau_min=0.03, gamma_init=0.5, a_init=10.0, b_init=0.0, bn_momentum=0.1)


class LNcf(nn.Module):  # channels-first LayerNorm (ConvNeXt)
    def __init__(s, c): super().__init__(); s.weight = nn.Parameter(torch.ones(c)); s.bias = nn.Parameter(torch.zeros(c))
    def forward(s, x):
        u = x.mean(1, keepdim=True); v = (x - u).pow(2).mean(1, keepdim=True)
        return s.weight[:, None, None] * ((x - u) / torch.sqrt(v + 1e-6)) + s.bias[:, None, None]


class Block(nn.Module):
    def __init__(s, d):
        super().__init__()
        s.dwconv = nn.Conv2d(d, d, 7, padding=3, groups=d); s.layernorm = nn.LayerNorm(d, eps=1e-6)
        s.pwconv1 = nn.Linear(d, 4 * d); s.pwconv2 = nn.Linear(4 * d, d); s.layer_scale_parameter = nn.Parameter(torch.full((d,), 1e-6))
    def forward(s, x):
        h = s.dwconv(x).permute(0, 2, 3, 1)
        h = s.pwconv2(F.gelu(s.pwconv1(s.layernorm(h)))) * s.layer_scale_parameter
        return x + h.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(s, c):
        super().__init__()
        d = c["dims"]
        s.embeddings = nn.Module(); s.embeddings.patch_embeddings = nn.Conv2d(c["in_channels"], d[0], 4, 4); s.embeddings.layernorm = LNcf(d[0])
        s.encoder = nn.Module(); s.encoder.stages = nn.ModuleList()
        for i in range(4):
            st = nn.Module()
            if i > 0: st.downsampling_layer = nn.Sequential(LNcf(d[i - 1]), nn.Conv2d(d[i - 1], d[i], 2, 2))
            st.layers = nn.ModuleList([Block(d[i]) for _ in range(c["depths"][i])])
            s.encoder.stages.append(st)
    def forward(s, x):
        x = s.embeddings.layernorm(s.embeddings.patch_embeddings(x)); outs = []
        for i, st in enumerate(s.encoder.stages):
            if i > 0: x = st.downsampling_layer(x)
            for b in st.layers: x = b(x)
            outs.append(x)
        return outs


def mha(q_in, k_in, v_in, q, k, v, o, heads, bias=None):
    B, Nq, E = q_in.shape; Nk = k_in.shape[1]; d = E // heads
    qh = q(q_in).view(B, Nq, heads, d).transpose(1, 2); kh = k(k_in).view(B, Nk, heads, d).transpose(1, 2); vh = v(v_in).view(B, Nk, heads, d).transpose(1, 2)
    sc = qh @ kh.transpose(-1, -2) / math.sqrt(d)
    if bias is not None: sc = sc + bias[:, None, None, :]
    ctx = (torch.softmax(sc, -1) @ vh).transpose(1, 2).reshape(B, Nq, E)
    return o(ctx) if o is not None else ctx


class Bert(nn.Module):
    def __init__(s, c):
        super().__init__()
        D = c["text_hidden"]; s.heads = c["text_heads"]
        s.embeddings = nn.Module(); e = s.embeddings
        e.word_embeddings = nn.Embedding(c["vocab_size"], D); e.position_embeddings = nn.Embedding(c["max_positions"], D)
        e.token_type_embeddings = nn.Embedding(2, D); e.LayerNorm = nn.LayerNorm(D, eps=1e-12)
        s.encoder = nn.Module(); s.encoder.layer = nn.ModuleList()
        for _ in range(c["text_layers"]):
            L = nn.Module(); L.attention = nn.Module(); L.attention.self = nn.Module(); a = L.attention.self
            a.query, a.key, a.value = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
            L.attention.output = nn.Module(); L.attention.output.dense = nn.Linear(D, D); L.attention.output.LayerNorm = nn.LayerNorm(D, eps=1e-12)
            L.intermediate = nn.Module(); L.intermediate.dense = nn.Linear(D, c["text_intermediate"])
            L.output = nn.Module(); L.output.dense = nn.Linear(c["text_intermediate"], D); L.output.LayerNorm = nn.LayerNorm(D, eps=1e-12)
            s.encoder.layer.append(L)
    def forward(s, ids, mask):
        e = s.embeddings; L = ids.shape[1]
        x = e.word_embeddings(ids) + e.position_embeddings.weight[:L] + e.token_type_embeddings.weight[0]
        x = e.LayerNorm(x); bias = (1.0 - mask.float()) * torch.finfo(torch.float32).min
        for l in s.encoder.layer:
            a = l.attention.self
            x = l.attention.output.LayerNorm(l.attention.output.dense(mha(x, x, x, a.query, a.key, a.value, None, s.heads, bias)) + x)
            x = l.output.LayerNorm(l.output.dense(F.gelu(l.intermediate.dense(x))) + x)
        return x


def pe_table(n, c):
    pos = torch.arange(n, dtype=torch.float32)[:, None]; div = torch.exp(torch.arange(0, c, 2, dtype=torch.float32) * (-math.log(10000.0) / c))
    pe = torch.zeros(n, c); pe[:, 0::2] = torch.sin(pos * div); pe[:, 1::2] = torch.cos(pos * div); return pe


class Attn(nn.Module):
    def __init__(s, C): super().__init__(); s.q, s.k, s.v, s.o = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)


class Stage(nn.Module):
    def __init__(s, c, k, text):
        super().__init__()
        C, Cs, M = c["dims"][3 - k], c["dims"][2 - k], c["token_outs"][k]; s.C, s.M, s.c = C, M, c
        if text:
            s.text_proj = nn.Module(); s.text_proj.token_mix = nn.Linear(c["text_len"], M); s.text_proj.linear = nn.Linear(c["text_hidden"], C)
            s.cross_attn_norm_in = nn.LayerNorm(C); s.cross_attn = Attn(C); s.cross_attn_norm_out = nn.LayerNorm(C); s.cross_attn_scale = nn.Parameter(torch.tensor(1.421))
        s.self_attn_norm_in = nn.LayerNorm(C); s.self_attn = Attn(C); s.self_attn_norm_out = nn.LayerNorm(C)
        s.up = nn.ConvTranspose2d(C, Cs, 2, 2); s.conv1 = nn.Conv2d(2 * Cs, Cs, 3, padding=1, bias=False); s.bn1 = nn.BatchNorm2d(Cs)
        s.conv2 = nn.Conv2d(Cs, Cs, 3, padding=1, bias=False); s.bn2 = nn.BatchNorm2d(Cs); s.text = text
    def forward(s, x, skip, H):
        B, C, h, w = x.shape; v = x.permute(0, 2, 3, 1).reshape(B, h * w, C); pe = pe_table(h * w, C).to(x.device)
        u = s.self_attn_norm_in(v); a = s.self_attn
        v = v + s.self_attn_norm_out(mha(u + pe, u + pe, u, a.q, a.k, a.v, a.o, s.c["self_heads"]))
        if s.text:
            t = s.text_proj.token_mix(H.transpose(1, 2)).transpose(1, 2)
            t = F.leaky_relu(s.text_proj.linear(F.gelu(t)), 0.01)
            u = s.cross_attn_norm_in(v); a = s.cross_attn
            v = v + s.cross_attn_scale * s.cross_attn_norm_out(mha(u + pe, t + pe_table(s.M, C), t, a.q, a.k, a.v, a.o, s.c["cross_heads"]))
        x = v.transpose(1, 2).reshape(B, C, h, w)
        y = torch.cat([s.up(x), skip], 1)
        y = F.leaky_relu(s.bn1(s.conv1(y)), 0.01)
        return F.leaky_relu(s.bn2(s.conv2(y)), 0.01)


class TMCA(nn.Module):
    def __init__(s, c, f):
        super().__init__(); s.c, s.f = c, f
        text = f["text"]; s.has_align = text and (f["alignment"] != "none" or f["lgte"] or f["pixel_loss"]); s.has_lgte = text and (f["lgte"] or f["pixel_loss"])
        s.image_encoder = ConvNeXt(c)
        if text: s.text_encoder = Bert(c)
        if s.has_align:
            s.align = nn.Module(); s.align.image = nn.ModuleList(); s.align.text = nn.ModuleList(); d = c["align_dim"]
            for l in range(4):
                s.align.image.append(nn.Module()); s.align.image[l].fc1 = nn.Linear(c["dims"][l], d); s.align.image[l].fc2 = nn.Linear(d, d)
                s.align.text.append(nn.Module()); s.align.text[l].fc1 = nn.Linear(c["text_hidden"], d); s.align.text[l].fc2 = nn.Linear(d, d)
            s.align.log_tau = nn.Parameter(torch.tensor(math.log(f["tau_init"])))
        if s.has_lgte:
            s.lgte = nn.ModuleList()
            for l in range(4):
                m = nn.Module(); m.a = nn.Parameter(torch.tensor(f["a_init"])); m.b = nn.Parameter(torch.tensor(f["b_init"])); m.gamma = nn.Parameter(torch.tensor(f["gamma_init"])); s.lgte.append(m)
        s.decoder = nn.Module(); s.decoder.stages = nn.ModuleList([Stage(c, k, text) for k in range(3)])
        for st in s.decoder.stages: st.bn1.momentum = f["bn_momentum"]; st.bn2.momentum = f["bn_momentum"]
        s.decoder.head = nn.Module(); s.decoder.head.conv = nn.Conv2d(c["dims"][0], c["head_channels"] * 16, 3, padding=1); s.decoder.head.out = nn.Conv2d(c["head_channels"], 1, 1)

    def forward(s, image, ids, mask, gt=None):
        """Returns (logits, maps, losses); losses only when gt is given. maps: feat, sim, attn per level."""
        f = s.f; feats = s.image_encoder(image); H = None; enh = list(feats); maps = dict(feat=feats, sim=[None] * 4, attn=[None] * 4)
        V, U, logit = [None] * 4, [None] * 4, [None] * 4
        if f["text"]:
            H = s.text_encoder(ids, mask)
            if s.has_align:
                g = (H * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                for l in range(4):
                    x = feats[l]; B, C, h, w = x.shape; im, tx = s.align.image[l], s.align.text[l]
                    V[l] = F.normalize(im.fc2(F.gelu(im.fc1(x.permute(0, 2, 3, 1)))), dim=-1, eps=1e-6).reshape(B, h * w, -1)
                    U[l] = F.normalize(tx.fc2(F.gelu(tx.fc1(g))), dim=-1, eps=1e-6)
                    S = (V[l] @ U[l][:, :, None]).reshape(B, h, w); maps["sim"][l] = S
                    if s.has_lgte:
                        lg = s.lgte[l]; logit[l] = lg.a * S[:, None] + lg.b; A = torch.sigmoid(logit[l]); maps["attn"][l] = A
                        if f["lgte"]: enh[l] = x * (1 + lg.gamma * A)
        x = enh[3]
        for k, st in enumerate(s.decoder.stages): x = st(x, enh[2 - k], H)
        logits = s.decoder.head.out(F.pixel_shuffle(s.decoder.head.conv(x), 4))
        if gt is None: return logits, maps, None
        p = torch.sigmoid(logits); inter = (p * gt).sum((1, 2, 3))
        L = dict(bce=F.binary_cross_entropy_with_logits(logits, gt), dice=(1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + gt.sum((1, 2, 3)) + 1)).mean())
        total = L["bce"] + L["dice"]; B = len(gt)
        Ws = [F.avg_pool2d(gt, gt.shape[-1] // feats[l].shape[-1]) for l in range(4)]
        if f["text"] and f["alignment"] != "none" and f["levels"]:
            same = (ids[:, None, :] == ids[None, :, :]).all(-1) & ~torch.eye(B, dtype=torch.bool, device=ids.device)
            tau = torch.clamp(s.align.log_tau.exp(), min=f["tau_min"]); nce = []
            for l in f["levels"]:
                Wl = Ws[l].reshape(B, -1); n = Wl.shape[1]; tot = Wl.sum(1, keepdim=True)
                uniform = torch.full_like(Wl, 1.0 / n)
                om = uniform if f["alignment"] == "global" else torch.where(tot > 1e-6, Wl / tot.clamp_min(1e-12), uniform)
                z = ((om[:, None, :] @ V[l])[:, 0] @ U[l].t()) / tau
                zm = z.masked_fill(same, float("-inf")); t = torch.arange(B, device=z.device)
                L[f"nce{l}"] = 0.5 * (F.cross_entropy(zm, t) + F.cross_entropy(zm.t(), t)); nce.append(L[f"nce{l}"])
            L["nce"] = torch.stack(nce).mean(); total = total + f["lambda_nce"] * L["nce"]
        if f["text"] and f["pixel_loss"]:
            for l in range(4): L[f"pix{l}"] = F.binary_cross_entropy_with_logits(logit[l], Ws[l])
            L["pix"] = torch.stack([L[f"pix{l}"] for l in range(4)]).mean(); total = total + f["lambda_pix"] * L["pix"]
        L["total"] = total
        return logits, maps, L


def optimizer(m, lr=3e-4, foreach=False):
    scal = [p for p in m.parameters() if p.dim() == 0]; rest = [p for p in m.parameters() if p.dim() > 0]
    return torch.optim.AdamW([{"params": rest, "weight_decay": 0.01}, {"params": scal, "weight_decay": 0.0}], lr=lr, foreach=foreach)


def load_st(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); md = h.pop("__metadata__", {}); out = {}
    for k, v in h.items():
        s, e = v["data_offsets"]; dt = {"F32": torch.float32, "I64": torch.int64, "U8": torch.uint8}[v["dtype"]]
        out[k] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=dt).reshape(v["shape"])
    return md, out


def check(path):
    md, t = load_st(path); c = json.loads(md["config"]); f = json.loads(md["flags"])
    m = TMCA(c, f); sd = {k[6:]: (v.reshape(()) if v.numel() == 1 and (k.endswith((".a", ".b", ".gamma", "log_tau", "cross_attn_scale"))) else v) for k, v in t.items() if k.startswith("param.")}
    m.load_state_dict(sd); m.train()
    _, _, out = m(t["input.image"], t["input.ids"], t["input.mask"], t["input.gt"])
    worst = 0.0
    for k in [k for k in ("bce", "dice", "nce", "pix", "total") if k in out]:
        d = abs(out[k].item() - t[f"loss.{k}"].item()); worst = max(worst, d); print(f"loss.{k}: {out[k].item():.7f} vs oracle {t[f'loss.{k}'].item():.7f}")
    print("reference check:", "PASS" if worst < 1e-4 else "FAIL"); return worst < 1e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small"); ap.add_argument("--batch", type=int, default=8); ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3); ap.add_argument("--threads", type=int, default=0); ap.add_argument("--check")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--tf32", action="store_true", help="TF32 matmuls and convolutions (cuda); without it both are strictly FP32")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (if this PyTorch has it)")
    ap.add_argument("--foreach", action="store_true", help="AdamW's multi-tensor (foreach) implementation")
    ap.add_argument("--channels-last", action="store_true", help="model and image in channels-last memory format")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    if a.check: sys.exit(0 if check(a.check) else 1)
    dev = torch.device(a.device); cuda = dev.type == "cuda"
    if cuda:   # PyTorch's defaults allow TF32 in cuDNN convolutions: "FP32" must say it off explicitly
        torch.backends.cuda.matmul.allow_tf32 = a.tf32; torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    c = dict(PRESETS[a.preset], **COMMON); m = TMCA(c, FLAGS).to(dev); m.train()
    if a.channels_last: m = m.to(memory_format=torch.channels_last)
    opt = optimizer(m, foreach=a.foreach)
    fwd = torch.compile(m) if a.compile and hasattr(torch, "compile") else m
    S, B = c["image_size"], a.batch
    img = torch.randn(B, 3, S, S); ids = torch.randint(5, 30000, (B, 24)); mask = torch.ones(B, 24, dtype=torch.long); mask[:, 18:] = 0; ids[:, 18:] = 0
    gt = (torch.rand(B, 1, S, S) > 0.7).float()
    img, ids, mask, gt = img.to(dev), ids.to(dev), mask.to(dev), gt.to(dev)
    if a.channels_last: img = img.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(a.warmup + a.steps):
        if cuda: torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True); loss = fwd(img, ids, mask, gt)[2]["total"]; loss.backward(); opt.step()
        if cuda: torch.cuda.synchronize()
        if i >= a.warmup: times.append(time.perf_counter() - t0)
    times.sort(); med = times[len(times) // 2]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mode = ("TF32" if a.tf32 else "FP32") + (" + torch.compile" if fwd is not m else "") if cuda else "CPU"
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "device": a.device, "mode": mode, "threads": torch.get_num_threads(), "preset": a.preset,
                      "batch": B, "median_ms": round(med * 1e3, 2), "min_ms": round(times[0] * 1e3, 2), "images_per_s": round(B / med, 1),
                      "peak_device_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None, "peak_rss_mib": round(peak_mib, 1)}))


if __name__ == "__main__":
    main()
