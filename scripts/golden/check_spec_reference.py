#!/usr/bin/env python3
"""Optional cross-check: a quick float64 numpy re-implementation of the formulas in
shared/reference/optimizerv2-spec.md, replayed over every trajectory fixture.

Prints the worst error per case as max |x - e| / max(|e|, 1) and exits 1 if any case exceeds 1e-5.
It skips missing_nadam_mixed_dtype (the stale momentum_cache quirk is not modelled). Needs only numpy.
Usage: python3 scripts/golden/check_spec_reference.py
"""
import json, glob, math, os, sys
import numpy as np

F = lambda x: float(np.float32(x))  # float32-rounded hyper

def sched_lr(cfg, s):
    cn, c = cfg["class_name"], cfg["config"]
    if cn == "ExponentialDecay":
        p = s / c["decay_steps"]
        if c["staircase"]: p = math.floor(p)
        return c["initial_learning_rate"] * c["decay_rate"] ** p
    if cn == "PiecewiseConstantDecay":
        b, v = c["boundaries"], c["values"]
        for i, bb in enumerate(b):
            if s <= bb: return v[i]
        return v[-1]
    if cn == "PolynomialDecay":
        ds = c["decay_steps"]
        if c["cycle"]:
            ds = ds * (1 if s == 0 else math.ceil(s / ds)); p = s / ds
        else:
            p = min(s, ds) / ds
        return (c["initial_learning_rate"] - c["end_learning_rate"]) * (1 - p) ** c["power"] + c["end_learning_rate"]
    if cn == "InverseTimeDecay":
        p = s / c["decay_steps"]
        if c["staircase"]: p = math.floor(p)
        return c["initial_learning_rate"] / (1 + c["decay_rate"] * p)
    if cn == "CosineDecay":
        ds, ws, a = c["decay_steps"], c["warmup_steps"], c["alpha"]
        init = c["initial_learning_rate"]
        if c["warmup_target"] is None:
            sp = min(s, ds); return init * ((1 - a) * 0.5 * (1 + math.cos(math.pi * sp / ds)) + a)
        sp = min(s, ds + ws)
        if sp < ws: return (c["warmup_target"] - init) * sp / ws + init
        sp -= ws
        return c["warmup_target"] * ((1 - a) * 0.5 * (1 + math.cos(math.pi * sp / ds)) + a)
    if cn == "CosineDecayRestarts":
        f = s / c["first_decay_steps"]; t, m, a = c["t_mul"], c["m_mul"], c["alpha"]
        if t == 1.0:
            i = math.floor(f); f -= i
        else:
            i = math.floor(math.log(1 - f * (1 - t)) / math.log(t)); f = (f - (1 - t ** i) / (1 - t)) / t ** i
        cc = 0.5 * m ** i * (1 + math.cos(math.pi * f))
        return c["initial_learning_rate"] * ((1 - a) * cc + a)
    raise ValueError(cn)

def run(fx):
    ocfg = fx["input"]["optimizer"]; cls = ocfg["class_name"]; cfg = ocfg["config"]
    lrv = cfg["learning_rate"]
    decay = F(cfg.get("decay", 0.0)) if cls != "Nadam" else cfg["decay"]
    eps = cfg.get("epsilon", 1e-7)
    vars_ = [np.array(v["value"], dtype=np.float64).reshape(v["shape"]) for v in fx["input"]["variables"]]
    cons = [v["constraint"] for v in fx["input"]["variables"]]
    slots = [None] * len(vars_)
    mcache = 1.0
    out = []
    for k, st in enumerate(fx["input"]["steps"]):
        T = k + 1
        if isinstance(lrv, dict): lr = F(sched_lr(lrv, F(k)))
        else: lr = F(lrv)
        if decay > 0 and cls != "Nadam": lr = lr / (1 + decay * k)
        grads = st["gradients"]
        # clipping
        gl = []
        for g, v in zip(grads, vars_):
            if g is None: gl.append(None); continue
            if "dense" in g: gl.append(("d", np.array(g["dense"]).reshape(v.shape)))
            else: gl.append(("s", np.array(g["indices"]), np.array(g["values"]).reshape([-1] + list(v.shape[1:]))))
        def vals(g): return g[1] if g[0] == "d" else g[2]
        def setv(g, x): return ("d", x) if g[0] == "d" else ("s", g[1], x)
        if "clipvalue" in cfg:
            c = cfg["clipvalue"]; gl = [None if g is None else setv(g, np.clip(vals(g), -c, c)) for g in gl]
        if "clipnorm" in cfg:
            c = cfg["clipnorm"]
            gl = [None if g is None else setv(g, vals(g) * c / max(np.sqrt((vals(g)**2).sum()), c)) for g in gl]
        if "global_clipnorm" in cfg:
            c = cfg["global_clipnorm"]; G = np.sqrt(sum((vals(g)**2).sum() for g in gl if g is not None))
            sc = c * min(1 / G, 1 / c); gl = [None if g is None else setv(g, vals(g) * sc) for g in gl]
        if cls == "Nadam":
            b1 = F(cfg["beta_1"]); d = decay
            mu_t = b1 * (1 - 0.5 * F(0.96) ** (d * T)); mu_t1 = b1 * (1 - 0.5 * F(0.96) ** (d * (T + 1)))
            # cache dtype quirk ignored (only float32-first cases checked)
            if slots[0] is None and grads[0] is None: pass
            mcache = mcache * mu_t; S_new = mcache; S_next = S_new * mu_t1
        for i, (g, v) in enumerate(zip(gl, vars_)):
            if g is None: continue
            if slots[i] is None:
                init = {"Adagrad": cfg.get("initial_accumulator_value"), "Ftrl": cfg.get("initial_accumulator_value")}.get(cls)
                slots[i] = {"a": np.full(v.shape, init if init is not None else 0.0), "b": np.zeros(v.shape), "c": np.zeros(v.shape)}
            sl = slots[i]
            if g[0] == "d":
                rows = None; gg = g[1]
            else:
                if cls == "SGD" and not cfg["momentum"] > 0:
                    for j, r in zip(g[1], g[2]): v[j] -= r * lr
                    continue
                uniq = list(dict.fromkeys(g[1].tolist())); gg = np.zeros((len(uniq),) + v.shape[1:])
                for j, r in zip(g[1], g[2]): gg[uniq.index(j)] += r
                rows = np.array(uniq)
            step(cls, cfg, v, sl, gg, rows, lr, eps, T, locals())
            if cons[i] is not None and g[0] == "d":
                vars_[i][...] = constrain(cons[i], v)
        out.append([v.reshape(-1).copy() for v in vars_])
    return out

def constrain(c, w):
    cn, cc = c["class_name"], c["config"]
    if cn == "NonNeg": return w * (w >= 0)
    ax = cc.get("axis", 0)
    norms = np.sqrt((w**2).sum(axis=ax, keepdims=True))
    if cn == "MaxNorm":
        des = np.clip(norms, 0, cc["max_value"]); return w * (des / (1e-7 + norms))
    if cn == "UnitNorm": return w / (1e-7 + norms)
    if cn == "MinMaxNorm":
        des = cc["rate"] * np.clip(norms, cc["min_value"], cc["max_value"]) + (1 - cc["rate"]) * norms
        return w * (des / (1e-7 + norms))

def step(cls, cfg, v, sl, g, rows, lr, eps, T, env):
    R = (slice(None),) if rows is None else (rows,)
    if cls == "SGD":
        mu = F(cfg["momentum"]); a = sl["a"]
        a[R] = a[R] * mu - g * lr
        v[R] += (a[R] * mu - g * lr) if cfg["nesterov"] else a[R]
    elif cls == "Adam":
        b1, b2 = F(cfg["beta_1"]), F(cfg["beta_2"]); m, vv, vh = sl["a"], sl["b"], sl["c"]
        alpha = lr * math.sqrt(1 - b2 ** T) / (1 - b1 ** T)
        G = np.zeros_like(v); G[R] = g  # dense-in-effect
        m[...] = m + (G - m) * (1 - b1); vv[...] = vv + (G * G - vv) * (1 - b2)
        if cfg["amsgrad"]: vh[...] = np.maximum(vh, vv); den = vh
        else: den = vv
        v[...] -= m * alpha / (np.sqrt(den) + eps)
    elif cls == "Adagrad":
        acc = sl["a"]; acc[R] += g * g; v[R] -= g * lr / (np.sqrt(acc[R]) + eps)
    elif cls == "Adadelta":
        rho = F(cfg["rho"]); A, U = sl["a"], sl["b"]
        A[R] = A[R] * rho + g * g * (1 - rho)
        u = np.sqrt(U[R] + eps) / np.sqrt(A[R] + eps) * g
        v[R] -= u * lr; U[R] = U[R] * rho + u * u * (1 - rho)
    elif cls == "Adamax":
        b1, b2 = F(cfg["beta_1"]), F(cfg["beta_2"]); m, u = sl["a"], sl["b"]
        m[R] = m[R] * b1 + g * (1 - b1); u[R] = np.maximum(u[R] * b2, np.abs(g))
        v[R] -= lr / (1 - b1 ** T) * (m[R] / (u[R] + eps))
    elif cls == "Ftrl":
        p = F(cfg["learning_rate_power"]); l1 = F(cfg["l1_regularization_strength"])
        l2 = F(cfg["l2_regularization_strength"]) + F(cfg["beta"]) / (2 * lr)
        ls = F(cfg["l2_shrinkage_regularization_strength"])
        n, z = sl["a"], sl["b"]
        gs = g + 2 * ls * v[R] if ls > 0 else g
        n2 = n[R] + g * g
        P = (lambda x: np.sqrt(x)) if p == -0.5 else (lambda x: x ** (-p))
        z[R] = z[R] + gs - (P(n2) - P(n[R])) / lr * v[R]
        zz = z[R]
        v[R] = np.where(np.abs(zz) > l1, (l1 * np.sign(zz) - zz) / (P(n2) / lr + 2 * l2), 0.0)
        n[R] = n2
    elif cls == "Nadam":
        b1, b2 = F(cfg["beta_1"]), F(cfg["beta_2"]); m, vv = sl["a"], sl["b"]
        mu_t, mu_t1, S_new, S_next = env["mu_t"], env["mu_t1"], env["S_new"], env["S_next"]
        if rows is None:
            gp = g / (1 - S_new); m[...] = b1 * m + (1 - b1) * g; vv[...] = b2 * vv + (1 - b2) * g * g
            mp = m / (1 - S_next); vp = vv / (1 - b2 ** T)
            mb = (1 - mu_t) * gp + mu_t1 * mp; v[...] -= lr * mb / (np.sqrt(vp) + eps)
        else:
            m *= b1; vv *= b2; m[R] += g * (1 - b1); vv[R] += g * g * (1 - b2)
            gp = g / (1 - S_new); mp = m[R] / (1 - S_next); vp = vv[R] / (1 - b2 ** T)
            mb = (1 - mu_t) * gp + mu_t1 * mp; v[R] -= lr * mb / (np.sqrt(vp) + eps)
    elif cls == "RMSprop":
        rho, mu = F(cfg["rho"]), F(cfg["momentum"]); ms, mom, mg = sl["a"], sl["b"], sl["c"]
        if mu > 0:
            ms[R] = ms[R] + (g * g - ms[R]) * (1 - rho)
            if cfg["centered"]: mg[R] = mg[R] + (g - mg[R]) * (1 - rho); den = ms[R] - mg[R] ** 2 + eps
            else: den = ms[R] + eps
            mom[R] = mom[R] * mu + g * lr / np.sqrt(den); v[R] -= mom[R]
        else:
            if rows is None:
                ms[...] = rho * ms + (1 - rho) * g * g
                if cfg["centered"]: mg[...] = rho * mg + (1 - rho) * g; den = ms - mg ** 2
                else: den = ms
                v[...] -= lr * g / (np.sqrt(den) + eps)
            else:
                ms *= rho; ms[R] += g * g * (1 - rho)
                if cfg["centered"]: mg *= rho; mg[R] += g * (1 - rho); den = ms[R] - mg[R] ** 2
                else: den = ms[R]
                v[R] -= lr * g / (np.sqrt(den) + eps)

def main():
  worst = []
  for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "optimizers", "*.json"))):
      if path.endswith("INDEX.json") or "mixed_dtype" in path: continue
      fx = json.load(open(path))
      got = run(fx)
      err = 0.0
      for s, (ref, exp) in enumerate(zip(got, fx["expected"]["steps"])):
          for r, e in zip(ref, exp["variables"]):
              e = np.array(e); err = max(err, float(np.max(np.abs(r - e) / np.maximum(np.abs(e), 1.0))))
      worst.append((err, fx["case"]))
  worst.sort(reverse=True)
  for e, n in worst[:15]: print(f"{e:.2e} {n}")
  print("cases over 1e-5:", [n for e, n in worst if e > 1e-5])

  sys.exit(1 if any(e > 1e-5 for e, n in worst) else 0)


if __name__ == "__main__":
    main()
