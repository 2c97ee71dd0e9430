// Sends ext_authz Checks as raw protobuf bytes, so tests can put bytes on the wire that a
// well-behaved encoder never produces (invalid UTF-8 in string fields), and summarizes answers.
import * as grpc from "@grpc/grpc-js";
import { authorizationService } from "../../../authz-server/src/grpc/protos.js";

export interface Answer {
  readonly allowed: boolean;
  /** HTTP status Envoy would send (200 when allowed). */
  readonly status: number;
  readonly grpcCode: number;
  readonly reason: string;
  readonly raw: any;
}

const STATUS: Record<string, number> = { Unauthorized: 401, Forbidden: 403, BadRequest: 400, RequestHeaderFieldsTooLarge: 431, ServiceUnavailable: 503, TooManyRequests: 429 };

export function summarize(res: any): Answer {
  const allowed = (res.status?.code ?? 0) === 0 && !!res.okResponse;
  const headers: Record<string, string> = {};
  for (const h of res.okResponse?.headers ?? res.deniedResponse?.headers ?? []) headers[h.header.key] = h.header.value;
  const code = res.deniedResponse?.status?.code;
  const status = allowed ? 200 : typeof code === "number" ? code : (STATUS[String(code)] ?? Number.NaN);
  return { allowed, status, grpcCode: res.status?.code ?? 0, reason: headers["x-meshward-reason"] ?? "", raw: res };
}

/** A Check client that accepts either a request object or pre-encoded bytes; every call carries a hang guard deadline. */
export class RawCheckClient {
  private readonly client: grpc.Client;
  private readonly def = (authorizationService() as any).Check as {
    path: string;
    requestSerialize(v: object): Buffer;
    responseDeserialize(b: Buffer): any;
  };

  constructor(port: number, options: grpc.ClientOptions = {}) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1, ...options });
  }

  encode(req: object): Buffer {
    return this.def.requestSerialize(req);
  }

  /** Resolves with the decoded answer; rejects with the grpc ServiceError (e.g. RESOURCE_EXHAUSTED). */
  send(req: object | Buffer, hangGuardMs = 10_000): Promise<Answer> {
    const bytes = Buffer.isBuffer(req) ? req : this.encode(req);
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(
        this.def.path,
        (b: Buffer) => b,
        (b: Buffer) => this.def.responseDeserialize(b),
        bytes,
        { deadline: Date.now() + hangGuardMs },
        (err: grpc.ServiceError | null, res?: any) => (err ? reject(err) : resolve(summarize(res))),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}

/**
 * Encodes `req` (which must contain `marker`, as UTF-8 text) and overwrites every occurrence of
 * the marker's bytes with `bytes` of the same length: the protobuf framing stays valid while the
 * string fields now carry arbitrary bytes.
 */
export function withRawBytes(client: RawCheckClient, req: object, marker: string, bytes: Buffer): Buffer {
  const encoded = client.encode(req);
  const m = Buffer.from(marker, "utf8");
  if (m.length !== bytes.length) throw new Error("marker and replacement must have the same length");
  const out = Buffer.from(encoded);
  let at = out.indexOf(m);
  if (at < 0) throw new Error("marker not found in the encoded request");
  for (; at >= 0; at = out.indexOf(m, at + m.length)) bytes.copy(out, at);
  return out;
}
