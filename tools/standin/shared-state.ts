// Process-wide proxy-wasm shared data (global CAS counter) and shared queues, partitioned by vm_id (docs/proxy-wasm-host.md §4.8, §4.9).
import { WasmResult } from "./abi.js";

interface Entry { value: Uint8Array; cas: number }

export class SharedDataStore {
  private readonly byVm = new Map<string, Map<string, Entry>>();
  private casCounter = 0;

  private nextCas(): number {
    this.casCounter = (this.casCounter + 1) >>> 0;
    if (this.casCounter === 0) this.casCounter = 1;
    return this.casCounter;
  }

  get(vmId: string, key: string): { value: Uint8Array; cas: number } | undefined {
    return this.byVm.get(vmId)?.get(key);
  }

  /** cas 0 = unconditional; existing key with another cas = CasMismatch; absent key written whatever cas. */
  set(vmId: string, key: string, value: Uint8Array, cas: number): number {
    let m = this.byVm.get(vmId);
    if (!m) this.byVm.set(vmId, (m = new Map()));
    const e = m.get(key);
    if (e && cas !== 0 && cas !== e.cas) return WasmResult.CasMismatch;
    m.set(key, { value: new Uint8Array(value), cas: this.nextCas() });
    return WasmResult.Ok;
  }

  keys(vmId: string): string[] {
    return [...(this.byVm.get(vmId)?.keys() ?? [])];
  }

  /** Test hook: set the global counter (e.g. near 2^32 to exercise the wrap that skips 0). */
  setCasCounter(value: number): void {
    this.casCounter = value >>> 0;
  }

  /** Drops a vm_id's data (Envoy does so when the last VM with that vm_id is gone). */
  dropVm(vmId: string): void {
    this.byVm.delete(vmId);
  }
}

export interface QueueOwner { notify(token: number): void }

interface Queue { vmId: string; name: string; token: number; items: Uint8Array[]; owner: QueueOwner }

export class SharedQueueRegistry {
  private readonly byName = new Map<string, Queue>();
  private readonly byToken = new Map<number, Queue>();
  private nextToken = 1;

  register(vmId: string, name: string, owner: QueueOwner): number {
    const k = `${vmId}\u0000${name}`;
    let q = this.byName.get(k);
    if (q) {
      q.owner = owner;
      return q.token;
    }
    q = { vmId, name, token: this.nextToken++, items: [], owner };
    this.byName.set(k, q);
    this.byToken.set(q.token, q);
    return q.token;
  }

  resolve(vmId: string, name: string): number | undefined {
    return this.byName.get(`${vmId}\u0000${name}`)?.token;
  }

  enqueue(token: number, value: Uint8Array): number {
    const q = this.byToken.get(token);
    if (!q) return WasmResult.NotFound;
    q.items.push(new Uint8Array(value));
    q.owner.notify(token);
    return WasmResult.Ok;
  }

  dequeue(token: number): { result: number; value?: Uint8Array } {
    const q = this.byToken.get(token);
    if (!q) return { result: WasmResult.NotFound };
    const v = q.items.shift();
    return v ? { result: WasmResult.Ok, value: v } : { result: WasmResult.Empty };
  }

  size(token: number): number {
    return this.byToken.get(token)?.items.length ?? 0;
  }
}
