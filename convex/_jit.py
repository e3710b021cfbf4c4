"""Compiled kernel of the joint Newton iteration of :func:`convex.optimal_lt` (internal).

With numba installed (the ``fast`` extra) the iteration of ``convex.lt._joint_small`` runs
as machine code: the same iterates in the same floating-point order, the same acceptance
test and the same certificate. Without numba the Python paths of ``convex.lt`` are used.
Set ``CISTHEORY_NO_JIT=1`` to use them regardless.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["joint_kernel"]


# long: one numba function that mirrors convex.lt._joint_small operation by operation (so its
# results are bitwise the Python ones); split into helpers it would need one compiled function
# per helper and the in-order loop would no longer read side by side with the Python one.
def _kernel_source(s: Any, b2: Any, lam: Any, v: Any, lt_min: float, tol: float,
                   max_it: int) -> Any:  # pragma: no cover - compiled by numba
    k = s.shape[0]
    tot = 0.0
    for i in range(k):
        tot += s[i]
    x = np.empty(k)
    for i in range(k):
        x[i] = s[i] / tot
    g = np.empty(k)
    inv = np.empty(k)
    xn = np.empty(k)
    nu = 0.0
    full = False
    out = np.zeros(7)  # status, iterations, nu, then sx, chi, var, inner of the certificate
    for it in range(max_it + 1):
        sinv = 0.0
        sgi = 0.0
        sx = 0.0
        ok = full
        for i in range(k):
            q = s[i] / x[i]
            r2 = q * q
            bx = b2[i] * x[i]
            gi = bx - r2
            if ok and abs(gi - nu) > tol * (r2 + bx):
                ok = False
            ii = x[i] / (r2 + r2 + bx)
            g[i] = gi
            inv[i] = ii
            sinv += ii
            sgi += gi * ii
            sx += x[i]
        if ok and abs(sx - 1.0) <= tol:
            xmin = x[0]
            for i in range(1, k):
                xmin = min(xmin, x[i])
            if not xmin > lt_min:
                out[0] = 1.0  # the floor binds: the general path handles it
                return out, x
            chi = 0.0
            var = 0.0
            inner = 0.0
            for i in range(k):
                chi += lam[i] * lam[i] / x[i]
                var += v[i] * x[i] * x[i]
                inner += s[i] / x[i] * s[i] + 0.5 * b2[i] * x[i] * x[i] - nu * x[i]
            out[0] = 0.0
            out[1] = it
            out[2] = nu
            out[3] = sx
            out[4] = chi
            out[5] = var
            out[6] = inner
            return out, x
        if it == max_it:
            break
        nu_new = (1.0 - sx + sgi) / sinv
        xmin = np.inf
        for i in range(k):
            xn[i] = x[i] + (nu_new - g[i]) * inv[i]
            xmin = min(xmin, xn[i])
        if xmin > 0:
            for i in range(k):
                x[i] = xn[i]
            nu = nu_new
            full = True
        else:
            step = np.inf
            for i in range(k):
                di = (nu_new - g[i]) * inv[i]
                if di < 0:
                    step = min(step, -x[i] / di)
            step *= 0.5
            for i in range(k):
                x[i] = x[i] + step * ((nu_new - g[i]) * inv[i])
            nu += step * (nu_new - nu)
            full = False
    out[0] = 2.0  # not converged
    return out, x


@lru_cache(maxsize=1)
def joint_kernel() -> Callable[..., Any] | None:
    """The compiled kernel, or ``None`` without numba (or with ``CISTHEORY_NO_JIT=1``)."""
    if os.environ.get("CISTHEORY_NO_JIT", "") not in {"", "0"}:
        return None
    try:
        import numba
    except ImportError:
        return None
    kernel: Callable[..., Any] = numba.njit(cache=True, error_model="numpy")(_kernel_source)
    return kernel
