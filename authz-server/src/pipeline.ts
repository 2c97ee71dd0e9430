// The authz pipeline for one Check, top to bottom:
// attributes → size limits → credentials → identity → policy → decision → CheckResponse.
import type { Clock } from "./clock.js";
import { attributesFromCheckRequest, type CheckRequestObject } from "./attributes/from-check-request.js";
import { canonicalAuthority } from "./attributes/canonical-authority.js";
import { nonCanonicalPath } from "./attributes/canonical-path.js";
import { RequestAmbiguous, RequestTooLarge, type AuthzError } from "./errors.js";
import { resolveIdentity } from "./identity/resolve-identity.js";
import type { Attributes, Decision } from "./model.js";
import { evaluatePolicy } from "./policy/evaluate.js";
import type { Runtime } from "./policy-holder.js";
import { renderCheckResponse, type CheckResponseObject } from "./response/check-response.js";
import { attachCacheDirective } from "./response/cache-directive.js";
import type { CacheEpoch } from "./response/cache-epoch.js";
import { decideFromError, decideFromVerdict } from "./response/decide.js";

export interface PipelineDeps {
  readonly clock: Clock;
  readonly newId: () => string;
  /** Set when decisions may carry a cache directive for the authz-cache filter. */
  readonly cacheEpoch?: CacheEpoch;
}

export interface PipelineResult {
  readonly attrs: Attributes;
  readonly decision: Decision;
  readonly response: CheckResponseObject;
}

export async function runPipeline(request: CheckRequestObject, runtime: Runtime, deps: PipelineDeps): Promise<PipelineResult> {
  const { policy, credentials } = runtime;
  const id = deps.newId();
  let attrs = attributesFromCheckRequest(request);

  const refused = checkSize(attrs, policy.limits) ?? checkUnambiguous(attrs, policy);
  if (refused) {
    const decision = decideFromError(id, refused, {});
    return { attrs, decision, response: renderCheckResponse(decision, policy) };
  }

  // Read before anything awaits: a directive names the state its decision started from, so a key set,
  // revocation or policy that changes while the Check runs gives an old epoch the filter will not serve.
  const epoch = deps.cacheEpoch?.value();
  const authority = canonicalAuthority(attrs.host);
  if ("host" in authority && authority.host !== attrs.host) attrs = { ...attrs, host: authority.host };
  const { user, error } = await credentials.authenticate(attrs);
  const identity = resolveIdentity(attrs, user, policy);
  const verdict = evaluatePolicy(policy, { attrs, identity, credentialError: error, nowMs: deps.clock.now() });
  const decision = decideFromVerdict(id, verdict, identity);
  const response = renderCheckResponse(decision, policy);
  if (epoch !== undefined) attachCacheDirective({ decision, policy, attrs, response, epoch, nowMs: deps.clock.now() });
  return { attrs, decision, response };
}

/** Never judge a request an upstream could read differently (docs/security.md): path, authority, query. */
function checkUnambiguous(attrs: Attributes, policy: Runtime["policy"]): AuthzError | undefined {
  const why = nonCanonicalPath(attrs.path);
  if (why !== undefined) return new RequestAmbiguous("ERR_PATH_NOT_CANONICAL", `path is not canonical: ${why}`);
  const authority = canonicalAuthority(attrs.host);
  if ("problem" in authority) return new RequestAmbiguous("ERR_AUTHORITY_MALFORMED", `authority refused: ${authority.problem}`);
  // `?tenant=acme&tenant=globex`: upstreams disagree on which value counts, so a policy that reads the
  // query does not pick one; it refuses to judge.
  if (attrs.repeatedQuery !== undefined && policy.readsQuery) {
    return new RequestAmbiguous("ERR_QUERY_AMBIGUOUS", `query parameter '${attrs.repeatedQuery}' is given more than once with different values`);
  }
  return undefined;
}

function checkSize(attrs: Attributes, limits: Runtime["policy"]["limits"]): RequestTooLarge | undefined {
  if (attrs.headerCount > limits.maxHeaders) return new RequestTooLarge(`${attrs.headerCount} headers exceed the limit of ${limits.maxHeaders}`);
  if (attrs.headerBytes > limits.maxHeaderBytes) return new RequestTooLarge(`${attrs.headerBytes} header bytes exceed the limit of ${limits.maxHeaderBytes}`);
  return undefined;
}
