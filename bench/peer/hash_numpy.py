"""A NumPy peer of redpp's hashing kernel, for bench/prune-speed.ts: RED++'s binned KDE per neuron
(bandwidth beta * std * n^-0.2, two bins per bandwidth, a Gaussian kernel cut at 4 bandwidths, a split
at every local minimum of the density, each interval replaced by its mean), vectorised over the
neurons of a layer as a NumPy user would write it. It times the hashing alone, not the reading.

    python3 hash_numpy.py MANIFEST.json   ->   {"ms": ..., "weights": ..., "numpy": "..."}

MANIFEST: {"beta": 0.05, "layers": [{"file": "...f32", "rows": R, "fanIn": F}, ...]}, each file the
layer's weights as little-endian float32, rows of F.
"""
import json
import sys
import time

import numpy as np

BINS_PER_BANDWIDTH = 2
KERNEL_CUTOFF = 4
MAX_BINS = 1 << 16


def hash_layer(w, beta):
    rows, n = w.shape
    lo = w.min(axis=1)
    hi = w.max(axis=1)
    h = beta * w.std(axis=1) * n ** -0.2
    delta = h / BINS_PER_BANDWIDTH
    ok = (h > 0) & (hi > lo)
    delta = np.where(ok, delta, 1.0)
    bins = np.minimum(np.floor((hi - lo) / delta).astype(np.int64) + 1, MAX_BINS)
    delta = np.where(bins == MAX_BINS, (hi - lo) / (MAX_BINS - 1), delta)
    width = int(bins.max())
    radius = KERNEL_CUTOFF * BINS_PER_BANDWIDTH
    b = np.minimum(((w - lo[:, None]) / delta[:, None] + 0.5).astype(np.int64), bins[:, None] - 1)
    # Counts per (row, bin), padded by the kernel's radius on both sides.
    stride = width + 2 * radius
    flat = (np.arange(rows)[:, None] * stride + radius + b).ravel()
    counts = np.bincount(flat, minlength=rows * stride).reshape(rows, stride).astype(np.float64)
    taps = np.exp(-0.5 * (np.arange(radius + 1) / BINS_PER_BANDWIDTH) ** 2)
    density = taps[0] * counts[:, radius:radius + width]
    for k in range(1, radius + 1):
        density += taps[k] * (counts[:, radius - k:radius - k + width] + counts[:, radius + k:radius + k + width])
    # An interval starts after every local minimum (a bin lower than both neighbours' sides).
    d = np.diff(density, axis=1)
    minima = (d[:, :-1] < 0) & (d[:, 1:] > 0)
    starts = np.zeros((rows, width), dtype=np.int64)
    starts[:, 2:] = minima
    interval = np.cumsum(starts, axis=1)
    iv = np.take_along_axis(interval, b, axis=1)
    # Each weight takes its interval's mean.
    key = (np.arange(rows)[:, None] * width + iv).ravel()
    sums = np.bincount(key, weights=w.ravel().astype(np.float64), minlength=rows * width)
    cnt = np.bincount(key, minlength=rows * width)
    means = sums / np.maximum(cnt, 1)
    out = means[key].reshape(rows, n).astype(np.float32)
    return np.where(ok[:, None], out, w)


def main():
    manifest = json.load(open(sys.argv[1]))
    layers = [np.fromfile(l["file"], dtype="<f4").reshape(l["rows"], l["fanIn"]) for l in manifest["layers"]]
    t0 = time.perf_counter()
    for w in layers:
        hash_layer(w, manifest["beta"])
    ms = (time.perf_counter() - t0) * 1000
    print(json.dumps({"ms": ms, "weights": int(sum(w.size for w in layers)), "numpy": np.__version__}))


if __name__ == "__main__":
    main()
