// Child-process probe for the policy glob: argv = pattern, segment, count. Prints the match result.
// Run in its own process so that a catastrophic-backtracking matcher can be killed by the parent.
import { compilePathGlob } from "../../../authz-server/src/policy/glob.js";

const [pattern = "/", segment = "a", count = "1"] = process.argv.slice(2);
const path = `/${Array.from({ length: Number(count) }, () => segment).join("/")}`;
process.stdout.write(String(compilePathGlob(pattern)(path)));
