// JSON Schema (ajv, draft 2020-12 subset) of the policy file. Every object is closed
// (additionalProperties: false) so unknown keys are errors; cross-field checks live in compile-policy.ts.

const str = { type: "string", minLength: 1 } as const;
const strList = { type: "array", items: str } as const;
const duration = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" } as const;
const headerName = { type: "string", pattern: "^[a-z0-9!#$%&'*+.^_`|~-]+$" } as const;
const secretRef = {
  type: "object",
  additionalProperties: false,
  properties: { file: str, env: str },
} as const;
const credentialSource = {
  type: "object",
  additionalProperties: false,
  properties: { header: headerName, prefix: { type: "string" }, query: str },
} as const;
const claimRef = { type: "object", additionalProperties: false, required: ["claim"], properties: { claim: str } } as const;
const claimsToHeaders = {
  type: "array",
  items: {
    type: "object",
    additionalProperties: false,
    required: ["claim", "header"],
    properties: { claim: str, header: headerName },
  },
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
    metadata: { type: "object", additionalProperties: false, properties: { name: str } },
    spec: {
      type: "object",
      additionalProperties: false,
      required: ["rules"],
      properties: {
        providers: {
          type: "object",
          additionalProperties: false,
          properties: {
            jwt: {
              type: "array",
              items: {
                type: "object",
                additionalProperties: false,
                required: ["name", "issuer", "algorithms"],
                properties: {
                  name: providerName,
                  issuer: str,
                  audiences: strList,
                  jwks: {
                    type: "object",
                    additionalProperties: false,
                    properties: {
                      uri: { type: "string", pattern: "^https?://" },
                      file: str,
                      discovery: { type: "boolean" },
                      keys: { type: "array", items: { type: "object" } },
                      refreshInterval: duration,
                      cooldown: duration,
                      timeout: duration,
                    },
                  },
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
                },
              },
            },
            introspection: {
              type: "array",
              items: {
                type: "object",
                additionalProperties: false,
                required: ["name", "endpoint", "clientId", "clientSecret"],
                properties: {
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
                },
              },
            },
            apiKeys: {
              type: "array",
              items: {
                type: "object",
                additionalProperties: false,
                required: ["name", "from"],
                properties: {
                  name: providerName,
                  from: { type: "array", minItems: 1, items: credentialSource },
                  keysFile: str,
                  keys: {
                    type: "array",
                    items: {
                      type: "object",
                      additionalProperties: false,
                      required: ["id", "sha256"],
                      properties: {
                        id: str,
                        sha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
                        roles: strList,
                      },
                    },
                  },
                  forward: { type: "boolean" },
                },
              },
            },
            mesh: {
              type: "object",
              additionalProperties: false,
              required: ["trustDomains"],
              properties: { trustDomains: { type: "array", items: { type: "string", pattern: "^[a-z0-9._-]+$" } } },
            },
          },
        },
        roles: {
          type: "object",
          propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9_.:-]*$" },
          additionalProperties: { type: "array", items: { type: "string", pattern: "^[^\\s]+$" } },
        },
        bindings: {
          type: "array",
          items: {
            type: "object",
            additionalProperties: false,
            required: ["subjects", "roles"],
            properties: { subjects: { type: "array", minItems: 1, items: str }, roles: { type: "array", minItems: 1, items: str } },
          },
        },
        rules: { type: "array", items: { $ref: "#/$defs/rule" } },
        rateLimits: {
          type: "array",
          items: {
            type: "object",
            additionalProperties: false,
            required: ["domain", "name", "capacity", "refillPerSecond"],
            properties: {
              domain: str,
              name: str,
              capacity: { type: "integer", minimum: 1 },
              refillPerSecond: { type: "number", minimum: 0 },
            },
          },
        },
        limits: {
          type: "object",
          additionalProperties: false,
          properties: {
            maxCredentialBytes: { type: "integer", minimum: 1 },
            maxHeaders: { type: "integer", minimum: 1 },
            maxHeaderBytes: { type: "integer", minimum: 1 },
          },
        },
        cache: {
          type: "object",
          additionalProperties: false,
          properties: {
            enabled: { type: "boolean" },
            maxTtl: duration,
            cacheDenials: { type: "boolean" },
            secret: { type: "object", additionalProperties: false, properties: { file: str, env: str } },
          },
        },
        response: {
          type: "object",
          additionalProperties: false,
          properties: {
            realm: { type: "string", pattern: '^[^"\\\\]*$' },
            subjectHeader: headerName,
            rolesHeader: headerName,
          },
        },
      },
    },
  },
  $defs: {
    rule: {
      type: "object",
      additionalProperties: false,
      required: ["name"],
      properties: {
        name: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_.:-]*$" },
        effect: { enum: ["allow", "deny"] },
        enforcement: { enum: ["enforce", "dryRun"] },
        match: {
          type: "object",
          additionalProperties: false,
          properties: {
            hosts: strList,
            paths: { type: "array", items: { type: "string", pattern: "^/" } },
            methods: { type: "array", items: { type: "string", pattern: "^[A-Za-z]+$" } },
            sourceCidrs: strList,
            notSourceCidrs: strList,
          },
        },
        allow: { const: "anonymous" },
        require: { $ref: "#/$defs/requirement" },
        when: str,
        cache: { type: "boolean" },
      },
    },
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
