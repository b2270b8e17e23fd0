/**
 * Timing things that run for milliseconds on a machine other jobs share: medians, and runs of several
 * candidates interleaved so that a drift in load slows them all alike (validation's latency, the kernel
 * split's layer timings and its calibration, the benchmarks).
 */

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface InterleaveOptions {
  /** Untimed rounds first. */
  warmup?: number;
  /** Keep warming up for at least this long: the first runs of a process are several times slower (allocations, page faults, clocks ramping up), for longer than a few runs. */
  warmupMs?: number;
}

/**
 * Runs each of `fns` `runs` times, one of each in turn, after the warm-up; returns each one's run times
 * in milliseconds.
 */
export async function timeInterleaved(fns: readonly (() => Promise<unknown>)[], runs: number, options: InterleaveOptions = {}): Promise<number[][]> {
  const { warmup = 0, warmupMs = 0 } = options;
  const until = performance.now() + warmupMs;
  for (let i = 0; i < warmup || performance.now() < until; i++) for (const fn of fns) await fn();
  const times = fns.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    for (const [j, fn] of fns.entries()) {
      const t0 = process.hrtime.bigint();
      await fn();
      times[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return times;
}
