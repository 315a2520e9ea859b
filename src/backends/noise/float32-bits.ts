/** A float32's bit pattern and back, through one shared 4-byte view. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

export function floatOf(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}
