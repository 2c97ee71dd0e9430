// Admin listener settings from flags and environment: `--admin-addr HOST:PORT` (absent = no admin
// listener) and a bearer secret from `--admin-token-file PATH` or MESHWARD_ADMIN_TOKEN; no secret, no listener.
import { readFileSync } from "node:fs";
import { CodedError } from "../error-codes.js";
import { MIN_ADMIN_TOKEN_LENGTH } from "./admin-server.js";

export interface AdminConfig {
  readonly host: string;
  readonly port: number;
  readonly token: string;
}

export class AdminConfigInvalid extends CodedError<"ERR_ADMIN_CONFIG"> {
  constructor(message: string) {
    super("ERR_ADMIN_CONFIG", message);
  }
}

/** Undefined when the admin listener is disabled; throws AdminConfigInvalid naming the flag at fault. */
export function resolveAdminConfig(flags: { readonly adminAddr?: string; readonly adminTokenFile?: string }, env: NodeJS.ProcessEnv = process.env): AdminConfig | undefined {
  if (flags.adminAddr === undefined || flags.adminAddr === "") {
    if (flags.adminTokenFile !== undefined) throw new AdminConfigInvalid("--admin-token-file is set but --admin-addr is not");
    return undefined;
  }
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(flags.adminAddr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new AdminConfigInvalid(`--admin-addr: invalid address '${flags.adminAddr}' (expected HOST:PORT)`);
  const addr = { host: (m[1] ?? m[2])!, port };
  let token: string | undefined;
  let from: string;
  if (flags.adminTokenFile !== undefined) {
    from = `--admin-token-file ${flags.adminTokenFile}`;
    try {
      token = readFileSync(flags.adminTokenFile, "utf8").trim();
    } catch (err) {
      throw new AdminConfigInvalid(`${from}: cannot read: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
  } else {
    from = "MESHWARD_ADMIN_TOKEN";
    token = env.MESHWARD_ADMIN_TOKEN?.trim();
  }
  if (!token) throw new AdminConfigInvalid(`--admin-addr needs a bearer secret: set --admin-token-file PATH or MESHWARD_ADMIN_TOKEN (${from} is empty or unset); refusing to start the admin listener without one`);
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) throw new AdminConfigInvalid(`${from}: the admin secret must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  return { host: addr.host, port: addr.port, token };
}
