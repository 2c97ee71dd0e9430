// Injected time and randomness, so `exp`/`nbf`, cache expiry and decision ids are exact in tests.
import { randomBytes } from "node:crypto";

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Decision ids: a random per-process prefix plus a counter (unique, cheap, unguessable order-free prefix). */
export function createIdGenerator(random: (n: number) => Buffer = randomBytes): () => string {
  const prefix = random(8).toString("hex");
  let n = 0;
  return () => `${prefix}${(n++).toString(16).padStart(8, "0")}`;
}
