// A closed JSON Schema object (additionalProperties: false): an unknown key is an error. The policy schema
// and check-config's plugin-configuration and manifest schemas build their objects with it.

export type ClosedObject<P, R> = {
  readonly type: "object";
  readonly additionalProperties: false;
  readonly required?: R;
  readonly properties: P;
};

/** `{ type: "object", additionalProperties: false, required, properties }`, keys in that order. */
export function closed<const P extends Record<string, unknown>, const R extends readonly (keyof P & string)[]>(properties: P, required?: R): ClosedObject<P, R> {
  return { type: "object", additionalProperties: false, ...(required ? { required } : {}), properties };
}
