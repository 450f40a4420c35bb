import { createSyntheticSlide } from './fixtures/synthetic-slide.ts';
const s = createSyntheticSlide({ kind: 'kidney', width: 12000, height: 12000, seed: 3, tissueFraction: 0.5 });
let t = performance.now();
const img = await s.readRegion({ x: 3000, y: 3000, width: 1536, height: 1536 }, 3);
console.log('1536² at ds3', (performance.now() - t).toFixed(0), 'ms', img.width);
t = performance.now();
await s.readRegion({ x: 3000, y: 3000, width: 6144, height: 6144 }, 3);
console.log('6144² at ds3', (performance.now() - t).toFixed(0), 'ms');
