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

/** Texts up to this long are counted at once; longer ones first look for their keys (see `hasRepeatedKey`). */
const countUpTo = 1024
/** Beyond this many keys, looking for each one costs more than counting. */
const maxSearchedKeys = 8

/** Each key occurs once in `text` as a JSON string spelled without escapes. */
const eachQuotedOnce = (text: string, keys: ReadonlyArray<string>): boolean => {
  for (const key of keys) {
    const quoted = `"${key}"`
    if (text.indexOf(quoted, text.indexOf(quoted) + 1) !== -1) return false
  }
  return true
}

/** The members at the top level of an object's valid JSON text: its commas outside strings and nested values. */
const countMembers = (text: string): number => {
  let depth = 0
  let commas = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      // Jump to the closing quote: the next quote not escaped by an odd run of backslashes.
      let close = text.indexOf("\"", i + 1)
      while (text.charCodeAt(close - 1) === 92) {
        let run = 1
        while (text.charCodeAt(close - 1 - run) === 92) run++
        if (run % 2 === 0) break
        close = text.indexOf("\"", close + 1)
      }
      // Not JSON after all: a count no object matches.
      if (close < 0) return -1
      i = close
    } else if (c === 123 || c === 91) depth++
    else if (c === 125 || c === 93) depth--
    else if (c === 44 && depth === 1) commas++
  }
  return commas + 1
}

/**
 * Whether `text`, the JSON text of an object that `JSON.parse` turned into `value`, repeats a key at its top
 * level (in any spelling: `"fr\u006fm"` is `from`). `JSON.parse` keeps the last of repeated keys, other parsers
 * the first, so such text reads differently to different parsers: whoever forwards text it has checked must not
 * forward this.
 *
 * The text's top-level members are counted (strings skipped by `indexOf`) and compared with the keys of `value`.
 * A long text without escapes and with few keys is first searched for each key, quoted: native searches cost less
 * than the count there, and a key found once cannot be repeated.
 *
 * @since 0.1.0
 * @category guards
 */
export const hasRepeatedKey = (text: string, value: object): boolean => {
  const keys = Object.keys(value)
  if (keys.length === 0) return false
  if (text.length > countUpTo && keys.length <= maxSearchedKeys && !text.includes("\\") && eachQuotedOnce(text, keys)) {
    return false
  }
  return countMembers(text) !== keys.length
}
