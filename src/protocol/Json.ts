/**
 * JSON values as a Schema. `Schema.Unknown` is not JSON-safe (`undefined`, `NaN`), so wire payloads use this
 * instead: a decode/encode round trip of a `Json` value is exact.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category models
 */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

/**
 * @since 0.1.0
 * @category models
 */
export type JsonObject = { readonly [key: string]: Json }

/**
 * An object key. `__proto__` is excluded: the wire parser refuses it (copying such a key would replace an object's
 * prototype), so a value holding one could never be received and must not validate for sending either. Objects
 * that contain it anyway lose that key when validated, like any other key a schema does not admit.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Key = Schema.String.check(
  Schema.makeFilter((key) => key !== "__proto__" || "Forbidden key \"__proto__\"", { identifier: "Key" })
)

const extraKeyAsts = new WeakSet<object>()

/**
 * The keys of an open struct's index signature: any key but `__proto__` and the struct's declared fields. Without
 * the exclusion the schema would describe values such as `{ name: 0 }` for a struct whose `name` is a string, which
 * its own decoder refuses.
 *
 * @since 0.1.0
 * @category schemas
 */
export const extraKeys = (declared: Iterable<string>): Schema.String => {
  const names = new Set(declared)
  names.add("__proto__")
  const schema = Schema.String.check(
    Schema.makeFilter((key) => !names.has(key) || "Declared or forbidden key", { identifier: "ExtraKey" })
  )
  extraKeyAsts.add(schema.ast)
  return schema
}

/**
 * Whether a key schema is one made by `extraKeys` (or `Key`): it refuses nothing that `JSON.parse` output can hold
 * beyond `__proto__` (refused while parsing) and declared fields (checked by their own property signatures).
 *
 * @since 0.1.0
 * @category guards
 */
export const isExtraKey = (ast: object): boolean => extraKeyAsts.has(ast)

/**
 * @since 0.1.0
 * @category schemas
 */
export const Json: Schema.Codec<Json> = Schema.Union([
  Schema.Null,
  Schema.Boolean,
  Schema.Finite,
  Schema.String,
  Schema.Array(Schema.suspend((): Schema.Codec<Json> => Json)),
  Schema.Record(Key, Schema.suspend((): Schema.Codec<Json> => Json))
]).annotate({ identifier: "Json" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const JsonObject: Schema.Codec<JsonObject> = Schema.Record(Key, Json).annotate({ identifier: "JsonObject" })

/**
 * @since 0.1.0
 * @category guards
 */
export const isObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)
