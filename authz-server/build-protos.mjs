// Build step after tsc: compiles the Envoy API protos the server serves (ext_authz v3, rate limit v3),
// taken from the @grpc/grpc-js-xds devDependency, into one JSON descriptor beside dist/grpc/protos.js.
// The image then needs neither grpc-js-xds nor .proto parsing at run time. Generated: never edit or commit it.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import protobuf from "protobufjs";
import { DESCRIPTOR_URL, ENVOY_PROTO_FILES, envoyProtoDirs } from "./dist/grpc/protos.js";

const require = createRequire(import.meta.url);
// The well-known types protobufjs does not bundle, registered the way @grpc/proto-loader does.
for (const name of ["api", "descriptor", "source_context", "type"]) {
  protobuf.common(name, require(`protobufjs/google/protobuf/${name}.json`).nested.google.nested.protobuf.nested);
}

const dirs = envoyProtoDirs();
const root = new protobuf.Root();
const fallback = root.resolvePath;
root.resolvePath = (origin, target) => {
  for (const dir of dirs) {
    const full = join(dir, target);
    try {
      require("node:fs").accessSync(full);
      return full;
    } catch {
      /* next include dir */
    }
  }
  return fallback(origin, target);
};
root.loadSync([...ENVOY_PROTO_FILES], { keepCase: false });
root.resolveAll();
const json = JSON.stringify(root.toJSON({ keepComments: false }));
writeFileSync(DESCRIPTOR_URL, json);
console.log(`wrote ${DESCRIPTOR_URL.pathname.replace(/^.*\/authz-server\//, "authz-server/")} (${(json.length / 1024).toFixed(0)} KiB)`);
