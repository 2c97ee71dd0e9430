// HTTP listeners bound slow clients in time and cap open connections (issue 12, item 4), with real
// sockets on loopback: slowloris senders are cut off, and the default listener applies the limits too.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { createLimitedHttpServer, HTTP_LIMITS } from "../../authz-server/src/http-limits.js";
import { startHarness } from "../../tools/testing/authz-harness.js";

/** Opens a socket that sends one header byte every `everyMs`; resolves with ms until the server closed it. */
function slowloris(port: number, everyMs: number, giveUpMs: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s: Socket = connect(port, "127.0.0.1");
    const line = "GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: " + "a".repeat(10_000);
    let i = 0;
    const timer = setInterval(() => {
      if (!s.destroyed) s.write(line[i++ % line.length]!);
    }, everyMs);
    const done = (): void => {
      clearInterval(timer);
      clearTimeout(guard);
      s.destroy();
      resolve(Date.now() - t0);
    };
    const guard = setTimeout(done, giveUpMs);
    s.on("close", done);
    s.on("error", () => undefined);
  });
}

describe("HTTP listener limits (real sockets)", function () {
  this.timeout(30_000);

  it("closes 200 slowloris connections within the headers timeout plus one check interval", async () => {
    const server = createLimitedHttpServer((_req, res) => res.end("ok"), { requestTimeoutMs: 1_000, headersTimeoutMs: 500, keepAliveTimeoutMs: 500, maxConnections: 1_000 });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const held = await Promise.all(Array.from({ length: 200 }, () => slowloris(port, 100, 10_000)));
      const max = Math.max(...held);
      // Bounded by headersTimeout (500 ms) + the check interval (500 ms), far below the 10 s give-up.
      assert.ok(max < 3_000, `longest slow connection held ${max} ms`);
    } finally {
      server.close();
    }
  });

  it("closes 200 lease POSTs whose body trickles in within the request timeout plus one check interval", async () => {
    const server = createLimitedHttpServer((req, res) => {
      req.resume();
      req.on("end", () => res.end("ok"));
    }, { requestTimeoutMs: 1_000, headersTimeoutMs: 500, keepAliveTimeoutMs: 500, maxConnections: 1_000 });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const trickle = (): Promise<number> =>
      new Promise((resolve) => {
        const t0 = Date.now();
        const s = connect(port, "127.0.0.1");
        let timer: NodeJS.Timeout | undefined;
        s.on("connect", () => {
          s.write("POST /v1/quota/lease HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n");
          timer = setInterval(() => s.destroyed || s.write("{"), 100);
        });
        const guard = setTimeout(() => s.destroy(), 10_000);
        s.on("close", () => {
          clearInterval(timer);
          clearTimeout(guard);
          resolve(Date.now() - t0);
        });
        s.on("error", () => undefined);
      });
    try {
      const held = await Promise.all(Array.from({ length: 200 }, trickle));
      const max = Math.max(...held);
      assert.ok(max < 3_500, `longest trickling request held ${max} ms`);
    } finally {
      server.close();
    }
  });

  it("accepts no more than maxConnections sockets at once", async () => {
    const server = createLimitedHttpServer((_req, res) => res.end("ok"), { ...HTTP_LIMITS, maxConnections: 10 });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const sockets: Socket[] = [];
    try {
      const closed = await Promise.all(
        Array.from({ length: 30 }, () => new Promise<boolean>((resolve) => {
          const s = connect(port, "127.0.0.1");
          sockets.push(s);
          s.on("error", () => undefined);
          s.on("close", () => resolve(true));
          setTimeout(() => resolve(false), 1_000);
        })),
      );
      const open = closed.filter((c) => !c).length;
      assert.equal(open, 10, `${open} of 30 connections stayed open`);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it("the authz-server HTTP listener (lease API, probes) cuts a slow client off within its default limits", async () => {
    const h = await startHarness("apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n  rules: []\n");
    try {
      const held = await slowloris(h.httpPort, 200, 20_000);
      assert.ok(held < HTTP_LIMITS.headersTimeoutMs + 3_000, `held ${held} ms`);
    } finally {
      await h.stop();
    }
  });
});
