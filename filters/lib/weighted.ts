// Weighted choice over targets with relative positive integer weights (share = weight / sum).
// A 64-bit point (a stable hash for sticky keys, a random number otherwise) picks the target. Pure.

export class WeightedChoice {
  /** Running sums: cumulative[i] = weight[0] + … + weight[i]. */
  private cumulative: u64[] = [];
  total: u64 = 0;

  add(weight: u64): void {
    this.total += weight;
    this.cumulative.push(this.total);
  }

  get length(): i32 {
    return this.cumulative.length;
  }

  /** Index of the target for `point` (uniform over u64): the first i with point % total < cumulative[i]. */
  pick(point: u64): i32 {
    const ticket = point % this.total;
    const c = this.cumulative;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ticket < unchecked(c[mid])) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
