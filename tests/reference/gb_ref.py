#!/usr/bin/env python3
"""Independent numpy reference for ccgate-worker's CPU forward pass.

Reads a GGUF file with its own parser, dequantises in float64, runs the Llama-family
forward pass (RMSNorm, RoPE normal/NeoX with linear scaling, GQA, SwiGLU, QKV bias) and
compares every position's logits with `ccgate-worker logits`. Usage:
    gb_ref.py WORKER MODEL.gguf TOKENS(comma-separated) MODE

Exits 1 when the max abs difference exceeds 1e-4 of the largest reference logit.

Products with Q8_0 and Q4_0 matrices take their input quantised to 8 bits in blocks of 32
(scale max|x|/127, round half away from zero, the scale then kept in F16), as the worker
(and llama.cpp) do. That rounding is discontinuous: a last-bit difference in a float sum
(the SIMD variants add in another order) can move one value to the next step, and that
shows in the logits at about the size of the quantisation itself. So for files with such matrices the bound is 2e-2
against the reference without that quantisation (measured on builtin:tiny: 0.3 % to 0.65 %),
and the reference with the same quantisation is printed beside it (1e-7 when no value
lands on the other side of a rounding step). The kernels themselves are checked exactly in
tests/unit/test_gb_kern.c.
"""
import struct
import subprocess
import sys

import numpy as np

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
          10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.o:self.o + n]
        self.o += n
        return s.decode("utf-8", "replace")

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(SCALAR[t])


def load_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF"
    r.o = 4
    version, n_t, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    assert version in (2, 3)
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        kv[k] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = kv.get("general.alignment", 32)
    base = (r.o + align - 1) // align * align
    tensors, types = {}, {}
    for name, ne, typ, off in infos:
        types[name] = typ
        n = int(np.prod(ne))
        raw = data[base + off:]
        if typ == 0:
            x = np.frombuffer(raw, "<f4", n).astype(np.float64)
        elif typ == 1:
            x = np.frombuffer(raw, "<f2", n).astype(np.float64)
        elif typ == 30:
            x = (np.frombuffer(raw, "<u2", n).astype(np.uint32) << 16).view(np.float32)
            x = x.astype(np.float64)
        elif typ == 8:
            b = np.frombuffer(raw, np.uint8, n // 32 * 34).reshape(-1, 34)
            d = b[:, :2].copy().view("<f2").astype(np.float64)
            q = b[:, 2:].view(np.int8).astype(np.float64)
            x = (d * q).reshape(-1)
        elif typ == 2:
            b = np.frombuffer(raw, np.uint8, n // 32 * 18).reshape(-1, 18)
            d = b[:, :2].copy().view("<f2").astype(np.float64)
            qs = b[:, 2:]
            lo = (qs & 0x0F).astype(np.float64) - 8
            hi = (qs >> 4).astype(np.float64) - 8
            x = (d * np.concatenate([lo, hi], axis=1)).reshape(-1)
        else:
            raise SystemExit(f"unsupported type {typ}")
        tensors[name] = x.reshape(list(reversed(ne)))
    return kv, tensors, types


def quant_act(h):
    """h quantised to 8 bits in blocks of 32 along the last axis, back as float64."""
    b = h.reshape(h.shape[:-1] + (-1, 32))
    d = np.max(np.abs(b), axis=-1, keepdims=True) / 127.0
    v = np.divide(b, d, out=np.zeros_like(b), where=d != 0)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    # the scale is kept in F16, as llama.cpp keeps it (q was rounded with the exact one)
    return (q * d.astype(np.float16).astype(np.float64)).reshape(h.shape)


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, n_rot, base, scale, neox):
    # x: [T, heads, hd]
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half) / n_rot)
    th = (np.asarray(pos, np.float64) * scale)[:, None] * inv[None, :]
    c, s = np.cos(th)[:, None, :], np.sin(th)[:, None, :]
    x = x.copy()
    if neox:
        a, b = x[..., :half].copy(), x[..., half:2 * half].copy()
        x[..., :half], x[..., half:2 * half] = a * c - b * s, a * s + b * c
    else:
        a, b = x[..., 0:n_rot:2].copy(), x[..., 1:n_rot:2].copy()
        x[..., 0:n_rot:2], x[..., 1:n_rot:2] = a * c - b * s, a * s + b * c
    return x


def forward(kv, t, types, tokens, qact):
    def mm(h, name):
        if qact and types[name] in (2, 8):  # Q4_0, Q8_0
            h = quant_act(h)
        return h @ t[name].T

    arch = kv["general.architecture"]
    g = lambda k, d=None: kv.get(f"{arch}.{k}", d)
    dim, nl, nh = g("embedding_length"), g("block_count"), g("attention.head_count")
    nkv = g("attention.head_count_kv", nh)
    hd = dim // nh
    n_rot = g("rope.dimension_count", hd)
    eps = g("attention.layer_norm_rms_epsilon", 1e-5)
    base = g("rope.freq_base", 10000.0)
    scale = 1.0 / g("rope.scaling.factor", 1.0) if g("rope.scaling.type") == "linear" else 1.0
    neox = arch == "qwen2"
    T = len(tokens)
    pos = np.arange(T)
    x = t["token_embd.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(nl):
        p = f"blk.{l}."
        h = rmsnorm(x, t[p + "attn_norm.weight"], eps)
        q, k, v = (mm(h, p + n + ".weight") for n in ("attn_q", "attn_k", "attn_v"))
        if p + "attn_q.bias" in t:
            q, k, v = q + t[p + "attn_q.bias"], k + t[p + "attn_k.bias"], v + t[p + "attn_v.bias"]
        q = rope(q.reshape(T, nh, hd), pos, n_rot, base, scale, neox)
        k = rope(k.reshape(T, nkv, hd), pos, n_rot, base, scale, neox)
        v = v.reshape(T, nkv, hd)
        rep = nh // nkv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, dim)
        x = x + mm(o, p + "attn_output.weight")
        h = rmsnorm(x, t[p + "ffn_norm.weight"], eps)
        gt, up = mm(h, p + "ffn_gate.weight"), mm(h, p + "ffn_up.weight")
        x = x + mm(gt / (1 + np.exp(-gt)) * up, p + "ffn_down.weight")
    out = "output.weight" if "output.weight" in t else "token_embd.weight"
    return mm(rmsnorm(x, t["output_norm.weight"], eps), out)


def main():
    worker, model, toks, mode = sys.argv[1:5]
    tokens = [int(s) for s in toks.split(",")]
    kv, t, types = load_gguf(model)
    ref = forward(kv, t, types, tokens, True)
    ref_f = forward(kv, t, types, tokens, False)
    out = subprocess.run([worker, "logits", "--model", model, "--tokens", toks, "--mode", mode,
                          "--threads", "2"], check=True, capture_output=True, text=True).stdout
    got = np.array([[float(v) for v in line.split()] for line in out.strip().splitlines()])
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    err_f = np.max(np.abs(got - ref_f)) / np.max(np.abs(ref_f))
    quantised = any(types[n] in (2, 8) for n in types)
    if quantised:
        print(f"{model} {mode}: max relative error {err_f:.3g} (bound 2e-2; against the "
              f"reference with 8-bit activations: {err:.3g})")
        ok = err_f <= 2e-2
    else:
        print(f"{model} {mode}: max relative error {err:.3g}")
        ok = err <= 1e-4
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
