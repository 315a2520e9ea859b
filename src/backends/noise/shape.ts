/** The element count of a tensor shape; throws on anything but non-negative integers. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`randn: bad dimension ${d} in shape [${shape.join(", ")}]`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new RangeError(`randn: shape [${shape.join(", ")}] is too large`);
  return n;
}
