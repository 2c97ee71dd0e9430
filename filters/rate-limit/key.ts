// Builds a limit's key from its descriptor values: components are length-prefixed so that no two
// different value lists give the same key, and the client IP is taken from "ip:port". Pure.

/** The IP of an Envoy address property: "10.0.0.1:443" → "10.0.0.1", "[::1]:443" → "::1"; null if empty. */
export function addressIp(address: string): string | null {
  const n = address.length;
  if (n == 0) return null;
  if (address.charCodeAt(0) == 0x5b) {
    const close = address.indexOf("]");
    if (close <= 1) return null;
    return address.substring(1, close);
  }
  const colon = address.indexOf(":");
  if (colon < 0) return address;
  if (address.lastIndexOf(":") != colon) return address;
  if (colon == 0) return null;
  return address.substring(0, colon);
}

/** Appends one component to a scoped key. */
export function appendComponent(key: string, value: string): string {
  return key + "\n" + value.length.toString() + ":" + value;
}

/** The key scope: domain and limit name. */
export function keyScope(domain: string, limit: string): string {
  return domain + "\n" + limit;
}
