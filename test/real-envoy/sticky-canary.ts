// "A user's canary choice sticks": every user's request reaches the same upstream in every round,
// whichever gateway process or worker serves it. Shared by the gateway and ingress scenarios.
import { strict as assert } from "node:assert";
import type { World } from "../../tools/envoy/scenario.js";
import { send } from "../../tools/envoy/with-envoy.js";

/**
 * Signs a reader token for each user, sends `GET /api/orders/1` for every user `rounds` times, round by
 * round, to `portFor(user index, round)`, and asserts each answer is 200 and each user saw one upstream.
 */
export async function assertStickyCanary(world: World, users: readonly string[], rounds: number, portFor: (i: number, round: number) => number): Promise<void> {
  const tokens = await Promise.all(users.map((u) => world.issuer.sign({ sub: u, roles: ["reader"] })));
  const choice = new Map<string, Set<string>>();
  for (let round = 0; round < rounds; round++) {
    const replies = await Promise.all(tokens.map((t, i) => send(portFor(i, round), "/api/orders/1", { headers: { authorization: `Bearer ${t}` } })));
    replies.forEach((r, i) => {
      assert.equal(r.status, 200, r.body);
      const seen = choice.get(users[i]!) ?? new Set<string>();
      seen.add((JSON.parse(r.body) as { upstream: string }).upstream);
      choice.set(users[i]!, seen);
    });
  }
  for (const [u, s] of choice) assert.equal(s.size, 1, `${u}: ${[...s].join(", ")}`);
}
