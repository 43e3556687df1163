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
export const Key: Schema.Schema<string> = Schema.String.pipe(
  Schema.filter((key) => key !== "__proto__", { message: () => "Forbidden key \"__proto__\"" })
).annotations({ identifier: "Key" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Json: Schema.Schema<Json> = Schema.Union(
  Schema.Null,
  Schema.Boolean,
  Schema.JsonNumber,
  Schema.String,
  Schema.Array(Schema.suspend((): Schema.Schema<Json> => Json)),
  Schema.Record({ key: Key, value: Schema.suspend((): Schema.Schema<Json> => Json) })
).annotations({ identifier: "Json" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const JsonObject: Schema.Schema<JsonObject> = Schema.Record({ key: Key, value: Json }).annotations({
  identifier: "JsonObject"
})

/**
 * @since 0.1.0
 * @category guards
 */
export const isObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)
