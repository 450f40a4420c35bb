// The Gaussian importance map used to blend overlapping tiles (nnU-Net, the seed's §3.3):
// g[r,c] = exp(−((r−c0)² + (c−c0)²) / (2σ²)), c0 = floor(tile/2), σ = sigmaFraction·tile, peak 1.
// Zeros (possible for tiny σ) are clamped to the smallest non-zero weight so that a pixel covered
// by any tile never divides by 0. Memoised per (tile, σ) because every tile of a run shares it.

const cache = new Map<string, Float32Array>();

export function gaussianWeights(tile: number, sigmaFraction = 1 / 8): Float32Array {
  const key = `${tile}:${sigmaFraction}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const sigma = tile * sigmaFraction;
  const c0 = Math.floor(tile / 2);
  const axis = new Float64Array(tile);
  for (let i = 0; i < tile; i++) axis[i] = Math.exp(-((i - c0) ** 2) / (2 * sigma * sigma));
  const g = new Float32Array(tile * tile);
  let minPositive = Infinity;
  for (let r = 0; r < tile; r++) {
    for (let c = 0; c < tile; c++) {
      const v = Math.fround((axis[r] as number) * (axis[c] as number));
      g[r * tile + c] = v;
      if (v > 0 && v < minPositive) minPositive = v;
    }
  }
  for (let i = 0; i < g.length; i++) if (g[i] === 0) g[i] = minPositive;
  cache.set(key, g);
  return g;
}

export function clearGaussianCache(): void {
  cache.clear();
}
