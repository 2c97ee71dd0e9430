// Metrics of a `--workers N` process group: the worker that answers a scrape asks the primary, which
// collects every worker's registry over node:cluster IPC (prom-client's AggregatorRegistry) and sums them.
import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";

const SCRAPE_REQ = "meshward:scrape-req";
const SCRAPE_RES = "meshward:scrape-res";
const SCRAPE_TIMEOUT_MS = 5_000;

interface ScrapeMessage {
  readonly type?: string;
  readonly id?: number;
  readonly text?: string;
  readonly error?: string;
}

/** In the primary: answers workers' scrape requests with the whole group's metrics. */
export function serveGroupMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on("message", (worker, msg: ScrapeMessage) => {
    if (msg?.type !== SCRAPE_REQ) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: SCRAPE_RES, id: msg.id, text }),
      (err: unknown) => worker.send({ type: SCRAPE_RES, id: msg.id, error: String(err) }),
    );
  });
}

/** In a worker: offers `registry` to the primary's aggregation and returns a scrape of the whole group. */
export function groupScrape(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // registers the worker's answer to the primary's collection requests
  let next = 0;
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  process.on("message", (msg: ScrapeMessage) => {
    if (msg?.type !== SCRAPE_RES || msg.id === undefined) return;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error !== undefined) p.reject(new Error(msg.error));
    else p.resolve(msg.text ?? "");
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("metrics aggregation timed out"));
      }, SCRAPE_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: SCRAPE_REQ, id });
    });
}
