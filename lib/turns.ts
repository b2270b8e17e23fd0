/**
 * Main-thread work in slices: the event loop gets a turn between them, so that a server embedding
 * prune() keeps serving (the weight-wide work goes to the pool; this is for what stays here).
 */

/**
 * Resolves on the event loop's next turn, after its timers and pending I/O. One setImmediate is not
 * that: called from an I/O callback (the poll phase), it runs in the same iteration's check phase,
 * before any timer, so two slices of work ran back to back (a 77 ms stall made of 37 and 39 ms).
 * The second one runs in the following iteration, after its timers and poll.
 */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

/**
 * A pause for a loop of many small items: `await pause()` between items gives the event loop a turn
 * once `ms` of work have passed since the last one, and costs nothing otherwise.
 */
export function slices(ms = 10): () => Promise<void> | undefined {
  let since = performance.now();
  return () => {
    if (performance.now() - since < ms) return undefined;
    return nextTurn().then(() => {
      since = performance.now();
    });
  };
}

/** Elements a chunked loop converts between checks for a pause: a few MiB, a millisecond or two of work. */
const CHUNK_ELEMENTS = 1 << 20;

/**
 * `step(from, to)` over [0, length) a chunk at a time, the event loop served between slices: for a
 * conversion of a whole tensor on the main thread (VGG-16's fc1 has 102 M weights). A loop over many
 * tensors passes its own `pause`, so that small ones add up to a slice too.
 */
export async function inChunks(
  length: number,
  step: (from: number, to: number) => void,
  { pause = slices(), chunk = CHUNK_ELEMENTS }: { pause?: () => Promise<void> | undefined; chunk?: number } = {},
): Promise<void> {
  for (let at = 0; at < length; at += chunk) {
    step(at, Math.min(length, at + chunk));
    await pause();
  }
}

/** A step-wise computation (a generator that yields between steps) run to its end at once. */
export function allSteps<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** A step-wise computation run with `await pause()` between steps: the event loop gets its turns. */
export async function stepsInTurns<T>(steps: Generator<void, T, void>, pause: () => Promise<void> | undefined = slices()): Promise<T> {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await pause();
  }
}
