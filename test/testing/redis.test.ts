import { strict as assert } from "node:assert";
import { createConnection } from "node:net";
import { requireRedis, startRedis, type RedisProcess } from "../../tools/testing/redis.js";

describe("test helper: redis-server on a loopback port", function () {
  let redis: RedisProcess;
  before(async function () { requireRedis(this); redis = await startRedis(); });
  after(async () => { await redis?.stop(); });

  it("answers PING on its own port and comes back after a restart", async () => {
    const ping = () => new Promise<string>((resolve, reject) => {
      const s = createConnection({ host: "127.0.0.1", port: redis.port }, () => s.write("PING\r\n"));
      s.once("data", (d) => { s.end(); resolve(d.toString()); });
      s.once("error", reject);
    });
    assert.equal(await ping(), "+PONG\r\n");
    await redis.stop(true);
    await redis.start();
    assert.equal(await ping(), "+PONG\r\n");
  });
});
