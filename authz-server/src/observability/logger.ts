// The JSON logger (pino). Credentials never reach the log: decision lines carry no headers by
// construction, and serializers blank the keys that could hold secrets if anything logs them.
// (Serializers rather than pino's `redact`: redact walks its paths on every line and cost ~2% of a
// Check under load here; a serializer only runs when its key is present.)
import { pino, type DestinationStream, type Logger } from "pino";

const SECRET_KEYS = ["authorization", "cookie", "token", "secret", "clientSecret", "apiKey", "password"];

const redacted = (): string => "[redacted]";

/** Keeps a request-shaped `headers` object loggable without its credentials. */
function headersSerializer(headers: unknown): unknown {
  if (!headers || typeof headers !== "object") return headers;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key)$/i.test(k) ? "[redacted]" : v;
  }
  return out;
}

/**
 * Without a destination, logs go to stdout through an async buffer (4 KiB): one write syscall per
 * line cost measurable throughput at thousands of decisions per second. The caller flushes after
 * important lines and periodically (cli/serve.ts).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const serializers: Record<string, (v: any) => unknown> = { headers: headersSerializer, err: pino.stdSerializers.err };
  for (const k of SECRET_KEYS) serializers[k] = redacted;
  return pino({ level, base: { service: "authz-server" }, serializers }, destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }));
}
