// Our JavaScript Blosc-LZ4 frames decode with numcodecs' own Blosc (the C library zarrita and, in
// its Python form, zarr-python read with) to the exact input, for every kind of content.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registry } from 'zarrita';
import { bloscLz4Encode } from '../../server/slides/blosc-lz4.ts';

async function numcodecsBlosc(): Promise<(bytes: Uint8Array) => Promise<Uint8Array>> {
  const load = registry.get('blosc');
  assert.ok(load);
  const codec = (await load()).fromConfig({ cname: 'lz4', clevel: 5, shuffle: 0, blocksize: 0 }, { dataType: 'uint8', shape: [1], codecs: [], fillValue: 0 });
  return async (bytes) => {
    const out = await codec.decode(bytes);
    return out instanceof Uint8Array ? out : new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  };
}

test('Blosc-LZ4 frames round-trip through numcodecs for slide-like, random, flat and tiny inputs', async () => {
  const decode = await numcodecsBlosc();
  let s = 7;
  const rnd = (): number => (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const slideLike = new Uint8Array(3 * 512 * 512);
  for (let i = 0; i < slideLike.length; i++) slideLike[i] = i % 512 < 300 ? 200 + (rnd() & 15) : 255;
  const random = Uint8Array.from({ length: 600_000 }, rnd);
  const halfRandom = Uint8Array.from({ length: 700_001 }, (_, i) => (i < 350_000 ? rnd() : 9));
  const cases: Record<string, Uint8Array> = {
    slideLike,
    random,
    halfRandom,
    white: new Uint8Array(3 * 256 * 256).fill(255),
    tiny: Uint8Array.from([1, 2, 3]),
    thirteen: Uint8Array.from({ length: 13 }, (_, i) => i % 2),
  };
  for (const [name, raw] of Object.entries(cases)) {
    const frame = bloscLz4Encode(raw);
    assert.equal(new DataView(frame.buffer, frame.byteOffset).getUint32(12, true), frame.length, `${name}: cbytes`);
    assert.ok(frame.length <= raw.length + 16, `${name}: never bigger than raw + header`);
    assert.deepEqual(await decode(frame), raw, name);
  }
  assert.ok(bloscLz4Encode(slideLike).length < slideLike.length / 4, 'slide-like chunks compress');
});
