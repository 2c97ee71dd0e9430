// JSON Schema (ajv, draft 2020-12 subset) of the policy file. Every object is closed (closed-schema.ts:
// additionalProperties: false) so unknown keys are errors; cross-field checks live in compile-policy.ts.

import { closed } from "../closed-schema.js";

const str = { type: "string", minLength: 1 } as const;
const strList = { type: "array", items: str } as const;
const duration = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" } as const;
const headerName = { type: "string", pattern: "^[a-z0-9!#$%&'*+.^_`|~-]+$" } as const;
const secretRef = closed({ file: str, env: str });
const credentialSource = closed({ header: headerName, prefix: { type: "string" }, query: str });
const claimRef = closed({ claim: str }, ["claim"]);
const claimsToHeaders = {
  type: "array",
  items: closed({ claim: str, header: headerName }, ["claim", "header"]),
} as const;
/** Per-key attributes of an API key (claims for `claimsToHeaders` and CEL `identity.claims`). */
const keyClaims = {
  type: "object",
  propertyNames: { pattern: "^[A-Za-z_][A-Za-z0-9_]*$" },
  additionalProperties: { type: "string", pattern: "^[^\\r\\n\\x00]*$" },
} as const;
const providerName = { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]*$" } as const;

export const POLICY_SCHEMA = {
  $id: "https://meshward.io/schemas/authz-policy-v1.json",
  type: "object",
  additionalProperties: false,
  required: ["apiVersion", "kind", "spec"],
  properties: {
    apiVersion: { const: "meshward.io/v1" },
    kind: { const: "AuthzPolicy" },
    metadata: closed({ name: str }),
    spec: closed({
      providers: closed({
        jwt: {
          type: "array",
          items: closed({
            name: providerName,
            issuer: str,
            audiences: strList,
            jwks: closed({
              uri: { type: "string", pattern: "^https?://" },
              file: str,
              discovery: { type: "boolean" },
              keys: { type: "array", items: { type: "object" } },
              refreshInterval: duration,
              cooldown: duration,
              timeout: duration,
            }),
            algorithms: {
              type: "array",
              minItems: 1,
              items: {
                enum: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"],
              },
            },
            secret: secretRef,
            from: { type: "array", minItems: 1, items: credentialSource },
            clockSkew: duration,
            roles: claimRef,
            scopes: claimRef,
            claimsToHeaders,
            forward: { type: "boolean" },
          }, ["name", "issuer", "algorithms"]),
        },
        introspection: {
          type: "array",
          items: closed({
            name: providerName,
            endpoint: { type: "string", pattern: "^https?://" },
            clientId: str,
            clientSecret: secretRef,
            auth: { enum: ["client_secret_basic", "client_secret_post"] },
            from: { type: "array", minItems: 1, items: credentialSource },
            cacheTtl: duration,
            timeout: duration,
            audiences: strList,
            roles: claimRef,
            scopes: claimRef,
            claimsToHeaders,
            forward: { type: "boolean" },
          }, ["name", "endpoint", "clientId", "clientSecret"]),
        },
        apiKeys: {
          type: "array",
          items: closed({
            name: providerName,
            from: { type: "array", minItems: 1, items: credentialSource },
            keysFile: str,
            keys: {
              type: "array",
              items: closed({
                id: str,
                sha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
                roles: strList,
                claims: keyClaims,
              }, ["id", "sha256"]),
            },
            claimsToHeaders,
            forward: { type: "boolean" },
          }, ["name", "from"]),
        },
        mesh: closed({ trustDomains: { type: "array", items: { type: "string", pattern: "^[a-z0-9._-]+$" } } }, ["trustDomains"]),
      }),
      roles: {
        type: "object",
        propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9_.:-]*$" },
        additionalProperties: { type: "array", items: { type: "string", pattern: "^[^\\s]+$" } },
      },
      bindings: {
        type: "array",
        items: closed({ subjects: { type: "array", minItems: 1, items: str }, roles: { type: "array", minItems: 1, items: str } }, ["subjects", "roles"]),
      },
      rules: { type: "array", items: { $ref: "#/$defs/rule" } },
      rateLimits: {
        type: "array",
        items: closed({
          domain: str,
          name: str,
          capacity: { type: "integer", minimum: 1 },
          refillPerSecond: { type: "number", minimum: 0 },
          maxLease: { type: "integer", minimum: 1 },
        }, ["domain", "name", "capacity", "refillPerSecond"]),
      },
      limits: closed({
        maxCredentialBytes: { type: "integer", minimum: 1 },
        maxHeaders: { type: "integer", minimum: 1 },
        maxHeaderBytes: { type: "integer", minimum: 1 },
      }),
      cache: closed({
        enabled: { type: "boolean" },
        maxTtl: duration,
        cacheDenials: { type: "boolean" },
        secret: closed({ file: str, env: str }),
      }),
      response: closed({
        realm: { type: "string", pattern: '^[^"\\\\]*$' },
        subjectHeader: headerName,
        rolesHeader: headerName,
        identityHeaders: { type: "array", items: headerName },
      }),
    }, ["rules"]),
  },
  $defs: {
    rule: closed({
      name: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_.:-]*$" },
      effect: { enum: ["allow", "deny"] },
      enforcement: { enum: ["enforce", "dryRun"] },
      match: closed({
        hosts: strList,
        paths: { type: "array", items: { type: "string", pattern: "^/" } },
        methods: { type: "array", items: { type: "string", pattern: "^[A-Za-z]+$" } },
        sourceCidrs: strList,
        notSourceCidrs: strList,
      }),
      allow: { const: "anonymous" },
      require: { $ref: "#/$defs/requirement" },
      when: str,
      cache: { type: "boolean" },
    }, ["name"]),
    requirement: {
      type: "object",
      additionalProperties: false,
      minProperties: 1,
      properties: {
        permissions: { type: "array", minItems: 1, items: str },
        roles: { type: "array", minItems: 1, items: str },
        anyOf: { type: "array", minItems: 1, items: { $ref: "#/$defs/requirement" } },
        allOf: { type: "array", minItems: 1, items: { $ref: "#/$defs/requirement" } },
        user: { type: "boolean" },
        peer: {
          type: "object",
          additionalProperties: false,
          minProperties: 1,
          properties: {
            principals: { type: "array", minItems: 1, items: { type: "string", pattern: "^spiffe://" } },
            namespaces: { type: "array", minItems: 1, items: str },
            serviceAccounts: { type: "array", minItems: 1, items: { type: "string", pattern: "^[^/]+/[^/]+$" } },
          },
        },
      },
    },
  },
} as const;
