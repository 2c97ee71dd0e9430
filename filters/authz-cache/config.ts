// authz-cache plugin configuration, parsed and validated once in onConfigure (README "Configuration").
import { ConfigReader } from "../lib/config-reader";
import { JsonParser } from "../lib/json";

export class CacheConfig {
  secret: ArrayBuffer = new ArrayBuffer(0);
  skipToken: string = "";
  skipHeader: string = "x-meshward-authz-skip";
  skipHeaderBytes: ArrayBuffer = new ArrayBuffer(0);
  skipTokenBytes: ArrayBuffer = new ArrayBuffer(0);
  epochCluster: string = "";
  epochAuthority: string = "authz";
  epochPath: string = "/cache/epoch";
  pollMs: u32 = 200;
  maxStalenessMs: i64 = 1000;
  maxTtlMs: i64 = 60000;
  slots: u32 = 4096;
  maxEntryBytes: i32 = 4096;
  /** Dynamic metadata replayed on a hit (README "Dynamic metadata"): the keys, their header names, the namespace. */
  metadataKeys: string[] = [];
  metadataKeyBytes: ArrayBuffer[] = [];
  metadataHeaderBytes: ArrayBuffer[] = [];
  metadataHeaderPrefix: string = "x-meshward-authz-md-";
  metadataNamespace: string = "envoy.filters.http.ext_authz";
  metadataNamespaceBytes: ArrayBuffer = new ArrayBuffer(0);
}

const MAX_METADATA_KEYS = 32;

const KEYS = ["secret", "skipToken", "skipHeader", "epochCluster", "epochAuthority", "epochPath", "pollMs", "maxStalenessMs",
  "maxTtlMs", "slots", "maxEntryBytes", "metadataKeys", "metadataHeaderPrefix", "metadataNamespace"];

export class ConfigParser {
  error: string | null = null;

  parse(text: string): CacheConfig | null {
    const json = new JsonParser().parse(text);
    if (json === null) {
      this.error = "invalid JSON";
      return null;
    }
    const r = new ConfigReader();
    const o = r.object(json, "", KEYS);
    if (o === null) {
      this.error = r.error;
      return null;
    }
    const c = new CacheConfig();
    const secret = r.string(o, "", "secret", true);
    if (r.ok && secret.length < 16) r.fail("secret", "must be at least 16 characters");
    c.secret = String.UTF8.encode(secret);
    c.skipToken = r.string(o, "", "skipToken", true);
    if (r.ok && c.skipToken.length < 16) r.fail("skipToken", "must be at least 16 characters");
    c.skipHeader = r.nonEmptyString(o, "", "skipHeader", false, c.skipHeader).toLowerCase();
    c.epochCluster = r.nonEmptyString(o, "", "epochCluster", true);
    c.epochAuthority = r.nonEmptyString(o, "", "epochAuthority", false, c.epochAuthority);
    c.epochPath = r.nonEmptyString(o, "", "epochPath", false, c.epochPath);
    c.pollMs = <u32>r.number(o, "", "pollMs", false, 200, 20, 5000, true);
    c.maxStalenessMs = <i64>r.number(o, "", "maxStalenessMs", false, 1000, 50, 60000, true);
    c.maxTtlMs = <i64>r.number(o, "", "maxTtlMs", false, 60000, 1000, 86400000, true);
    c.slots = <u32>r.number(o, "", "slots", false, 4096, 1, 1048576, true);
    c.maxEntryBytes = <i32>r.number(o, "", "maxEntryBytes", false, 4096, 256, 65536, true);
    if (r.ok && <i64>c.pollMs >= c.maxStalenessMs) r.fail("pollMs", "must be less than maxStalenessMs");
    c.metadataKeys = r.stringArray(o, "", "metadataKeys", false);
    c.metadataHeaderPrefix = r.nonEmptyString(o, "", "metadataHeaderPrefix", false, c.metadataHeaderPrefix).toLowerCase();
    c.metadataNamespace = r.nonEmptyString(o, "", "metadataNamespace", false, c.metadataNamespace);
    if (r.ok && c.metadataKeys.length > MAX_METADATA_KEYS) r.fail("metadataKeys", "at most " + MAX_METADATA_KEYS.toString() + " keys");
    for (let i = 0; r.ok && i < c.metadataKeys.length; i++) {
      const k = c.metadataKeys[i];
      if (k.length == 0 || k.length > 64 || !isKeyText(k)) r.fail("metadataKeys[" + i.toString() + "]", "must be 1 to 64 of A-Z a-z 0-9 _ . -");
      for (let j = 0; r.ok && j < i; j++) {
        if (c.metadataKeys[j].toLowerCase() == k.toLowerCase()) r.fail("metadataKeys[" + i.toString() + "]", "repeats '" + c.metadataKeys[j] + "' (header names are case-insensitive)");
      }
    }
    if (!r.ok) {
      this.error = r.error;
      return null;
    }
    c.skipHeaderBytes = String.UTF8.encode(c.skipHeader);
    c.skipTokenBytes = String.UTF8.encode(c.skipToken);
    for (let i = 0; i < c.metadataKeys.length; i++) {
      c.metadataKeyBytes.push(String.UTF8.encode(c.metadataKeys[i]));
      c.metadataHeaderBytes.push(String.UTF8.encode(c.metadataHeaderPrefix + c.metadataKeys[i].toLowerCase()));
    }
    c.metadataNamespaceBytes = String.UTF8.encode(c.metadataNamespace);
    return c;
  }
}

function isKeyText(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2e || c == 0x2d)) return false;
  }
  return true;
}
