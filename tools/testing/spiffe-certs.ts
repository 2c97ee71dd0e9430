// Throw-away X.509 material for mTLS tests, made with openssl at test time: a CA and leaf
// certificates whose only identity is a SPIFFE URI SAN (EC P-256, valid for one day).
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Leaf {
  readonly spiffeId: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface TestCa {
  readonly certFile: string;
  readonly cert: string;
  /** A leaf certificate for `spiffeId` signed by this CA (usable as client and server certificate). */
  issue(name: string, spiffeId: string): Leaf;
}

export function opensslAvailable(): boolean {
  return spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
}

/** For mocha `before`: skips without openssl (fails under CI=true). */
export function requireOpenssl(ctx: Mocha.Context): void {
  if (opensslAvailable()) return;
  if (process.env["CI"] === "true") throw new Error("openssl is not installed (CI=true: a missing openssl is a failure)");
  console.log("      (skipped: openssl is not installed, cannot create test certificates)");
  ctx.skip();
}

function openssl(args: readonly string[]): void {
  const r = spawnSync("openssl", args, { encoding: "utf8", timeout: 20_000 });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** A new CA in `dir` (files `<name>-ca.crt/.key`). */
export function createCa(dir: string, name = "mesh"): TestCa {
  const keyFile = join(dir, `${name}-ca.key`);
  const certFile = join(dir, `${name}-ca.crt`);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", `/O=meshward-test/CN=${name} CA`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  return {
    certFile,
    cert: readFileSync(certFile, "utf8"),
    issue(leafName, spiffeId) {
      const leafKey = join(dir, `${leafName}.key`);
      const csr = join(dir, `${leafName}.csr`);
      const leafCert = join(dir, `${leafName}.crt`);
      const ext = join(dir, `${leafName}.ext`);
      openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", leafKey, "-out", csr, "-subj", `/O=meshward-test`]);
      writeFileSync(ext, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:${spiffeId}\n`);
      openssl(["x509", "-req", "-in", csr, "-CA", certFile, "-CAkey", keyFile, "-CAcreateserial", "-out", leafCert, "-days", "1", "-sha256", "-extfile", ext]);
      return { spiffeId, certFile: leafCert, keyFile: leafKey, cert: readFileSync(leafCert, "utf8"), key: readFileSync(leafKey, "utf8") };
    },
  };
}
