// Source address allow/block lists (IPv4 and IPv6) compiled into node:net BlockLists once.
import { BlockList, isIP } from "node:net";

export type AddressMatcher = (address: string) => boolean;

/** Returns the problem with a CIDR ("10.0.0.0/8", "2001:db8::/32", or a bare address), or undefined when valid. */
export function cidrProblem(cidr: string): string | undefined {
  const [addr = "", bits, extra] = cidr.split("/");
  const family = isIP(addr);
  if (family === 0 || extra !== undefined) return `invalid CIDR '${cidr}'`;
  if (bits === undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) return `invalid prefix length in CIDR '${cidr}'`;
  return undefined;
}

/** Compiles validated CIDRs; IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match their IPv4 CIDRs. */
export function compileCidrs(cidrs: readonly string[]): AddressMatcher {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr = "", bits] = cidr.split("/");
    const type = isIP(addr) === 4 ? "ipv4" : "ipv6";
    list.addSubnet(addr, bits === undefined ? (type === "ipv4" ? 32 : 128) : Number(bits), type);
  }
  return (address) => {
    const bare = stripZone(address);
    const family = isIP(bare);
    if (family === 0) return false;
    if (family === 6 && /^::ffff:[0-9.]+$/i.test(bare)) return list.check(bare.slice(7), "ipv4") || list.check(bare, "ipv6");
    return list.check(bare, family === 4 ? "ipv4" : "ipv6");
  };
}

function stripZone(address: string): string {
  const pct = address.indexOf("%");
  return pct < 0 ? address : address.slice(0, pct);
}
