/**
 * Every frame of the Symple v4 wire protocol, as Schemas discriminated on `type`.
 *
 * Every schema here has `Type` equal to `Encoded` (no transformations), so a value typed as a `Frame` is already
 * its wire shape: encoding is validation plus `JSON.stringify`, and trusted code may skip the validation.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { FrameError } from "./FrameError.js"
import { IceServer } from "./IceServer.js"
import { firstProblem } from "./internal/issueMessage.js"
import { extraKeys, isExtraKey, isObject, Json, JsonObject } from "./Json.js"
import { Peer } from "./Peer.js"

/** Optional field ASTs made here, to the AST of the schema they make optional (`optionalKey` makes a new node). */
const required = new WeakMap<SchemaAST.AST, SchemaAST.AST>()

const optional = <S extends Schema.Top>(schema: S): Schema.optionalKey<S> => {
  const out = Schema.optionalKey(schema)
  required.set(out.ast, schema.ast)
  return out
}

/** JSON has no `Infinity` or `NaN` (`JSON.stringify` writes them as `null`), so numeric fields are finite. */
const Finite = Schema.Finite

/** Extra keys of routed frames are kept as they are. */
const extra = (fields: Schema.Struct.Fields) => Schema.Record(extraKeys(Object.keys(fields)), Json)

/** A struct whose keys beyond `fields` are kept as they are (any JSON value). */
const open = <const Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.StructWithRest(Schema.Struct(fields), [extra(fields)])

/**
 * Fields shared by the four routed frames. `to` is any JSON value on input: a string or an array of room names
 * routes, anything else is dropped by the router rather than refused here.
 */
const routed = {
  id: optional(Schema.String),
  from: optional(Schema.String),
  to: optional(Json),
  subtype: optional(Schema.String),
  data: optional(Json),
  status: optional(Finite),
  notes: optional(Json)
} as const

/**
 * @since 0.1.0
 * @category schemas
 */
export const Auth = Schema.Struct({
  type: Schema.tag("auth"),
  user: Schema.String,
  name: optional(Schema.String),
  token: optional(Schema.String),
  data: optional(JsonObject),
  rooms: optional(Schema.Array(Json))
}).annotate({ identifier: "Auth" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Welcome = Schema.Struct({
  type: Schema.tag("welcome"),
  protocol: Schema.String,
  status: Finite,
  peer: Peer,
  rooms: Schema.Array(Schema.String),
  /** Extension: the ICE servers (STUN, TURN with credentials minted for this user) the server hands out. */
  iceServers: optional(Schema.Array(IceServer))
}).annotate({ identifier: "Welcome" })

/**
 * `status` is optional on input only because the JavaScript server sends one error without it; every error this
 * package sends has one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorFrame = Schema.Struct({
  type: Schema.tag("error"),
  status: optional(Finite),
  message: optional(Schema.String)
}).annotate({ identifier: "Error" })

/**
 * @since 0.1.0
 * @category schemas
 */
const messageFields = { type: Schema.tag("message"), ...routed }
export const Message = open(messageFields).annotate({ identifier: "Message" })

/**
 * @since 0.1.0
 * @category schemas
 */
const presenceFields = { type: Schema.tag("presence"), ...routed, probe: optional(Schema.Boolean) }
export const Presence = open(presenceFields).annotate({ identifier: "Presence" })

/**
 * @since 0.1.0
 * @category schemas
 */
const commandFields = {
  type: Schema.tag("command"),
  ...routed,
  node: optional(Schema.String),
  action: optional(Schema.String),
  form: optional(Json)
}
export const Command = open(commandFields).annotate({ identifier: "Command" })

/**
 * @since 0.1.0
 * @category schemas
 */
const eventFields = {
  type: Schema.tag("event"),
  ...routed,
  name: optional(Schema.String),
  time: optional(Finite),
  message: optional(Schema.String)
}
export const Event = open(eventFields).annotate({ identifier: "Event" })

/**
 * A missing or empty `room` is legal on the wire (and ignored by servers); a non-string one is not.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Join = Schema.Struct({ type: Schema.tag("join"), room: optional(Schema.String) }).annotate({
  identifier: "Join"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const JoinOk = Schema.Struct({ type: Schema.tag("join:ok"), room: Schema.String }).annotate({
  identifier: "JoinOk"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Leave = Schema.Struct({ type: Schema.tag("leave"), room: optional(Schema.String) }).annotate({
  identifier: "Leave"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const LeaveOk = Schema.Struct({ type: Schema.tag("leave:ok"), room: Schema.String }).annotate({
  identifier: "LeaveOk"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Close = Schema.Struct({ type: Schema.tag("close") }).annotate({ identifier: "Close" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Frame = Schema.Union([
  Auth,
  Welcome,
  ErrorFrame,
  Message,
  Presence,
  Command,
  Event,
  Join,
  JoinOk,
  Leave,
  LeaveOk,
  Close
]).annotate({ identifier: "Frame" })

/**
 * @since 0.1.0
 * @category models
 */
export type Frame = typeof Frame.Type
/** @since 0.1.0 @category models */
export type Auth = typeof Auth.Type
/** @since 0.1.0 @category models */
export type Welcome = typeof Welcome.Type
/** @since 0.1.0 @category models */
export type ErrorFrame = typeof ErrorFrame.Type
/** @since 0.1.0 @category models */
export type Message = typeof Message.Type
/** @since 0.1.0 @category models */
export type Presence = typeof Presence.Type
/** @since 0.1.0 @category models */
export type Command = typeof Command.Type
/** @since 0.1.0 @category models */
export type Event = typeof Event.Type
/** @since 0.1.0 @category models */
export type Join = typeof Join.Type
/** @since 0.1.0 @category models */
export type JoinOk = typeof JoinOk.Type
/** @since 0.1.0 @category models */
export type Leave = typeof Leave.Type
/** @since 0.1.0 @category models */
export type LeaveOk = typeof LeaveOk.Type
/** @since 0.1.0 @category models */
export type Close = typeof Close.Type

/**
 * The frames a server routes between peers.
 *
 * @since 0.1.0
 * @category models
 */
export type Routed = Message | Presence | Command | Event

/**
 * @since 0.1.0
 * @category models
 */
export type Type = Frame["type"]

/**
 * Each frame type's schema, by `type`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const schemas = {
  auth: Auth,
  welcome: Welcome,
  error: ErrorFrame,
  message: Message,
  presence: Presence,
  command: Command,
  event: Event,
  join: Join,
  "join:ok": JoinOk,
  leave: Leave,
  "leave:ok": LeaveOk,
  close: Close
} as const satisfies { readonly [K in Type]: Schema.Schema<Extract<Frame, { readonly type: K }>> }

/**
 * @since 0.1.0
 * @category constants
 */
export const types: ReadonlyArray<Type> = Object.keys(schemas) as Array<Type>

/**
 * @since 0.1.0
 * @category guards
 */
export const isType = (u: unknown): u is Type => typeof u === "string" && Object.hasOwn(schemas, u)

/** Input is reported in issues so that messages can quote the offending value, as Effect 3 did. */
const parseOptions = { errors: "first", reportInput: true } as const

const validators = Object.fromEntries(
  Object.entries(schemas).map(([type, schema]) => [
    type,
    Schema.decodeUnknownResult(schema as Schema.Codec<Frame>, parseOptions)
  ])
) as { readonly [K in Type]: (u: unknown) => Result.Result<Frame, Schema.SchemaError> }

const describe = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "an array" : typeof u === "string" ? "a string" : `a ${typeof u}`

/** The first problem of a failed validation, worded as Effect 3 worded it (error frames quote it). */
const problem = (error: Schema.SchemaError): string => {
  const first = firstProblem(error.issue)
  const path = first.path.map((key) => JSON.stringify(key)).join(".")
  return path === "" ? first.message : `${path}: ${first.message}`
}

type Check = (u: unknown) => boolean

/** Whether a node carries checks or an encoding, which the compiled validator does not interpret. */
const isPlain = (ast: SchemaAST.AST): boolean => ast.checks === undefined && ast.encoding === undefined

/**
 * A cheap validator derived from a frame schema's AST, valid only for values produced by `JSON.parse`: such values
 * are JSON already, so `Json`-typed fields need no walk, and a struct whose index signature admits any JSON keeps
 * its input object unchanged. Returns `undefined` for shapes it does not cover; those take the Schema path. The
 * Schema stays the single source of truth: this only skips work whose outcome is already known.
 */
const compileParsed = (node: SchemaAST.AST): Check | undefined => {
  // An optional field's node is a copy of the field schema's node: compile the schema it was made from.
  const ast = required.get(node) ?? node
  if (ast === Json.ast) return () => true
  // Every number `parseJson` yields is finite (it refuses numbers that overflow).
  if (ast === Finite.ast) return (u) => typeof u === "number"
  if (!isPlain(ast)) return undefined
  switch (ast._tag) {
    case "String":
      return (u) => typeof u === "string"
    case "Number":
      return (u) => typeof u === "number"
    case "Boolean":
      return (u) => typeof u === "boolean"
    case "Literal": {
      const literal = ast.literal
      return (u) => u === literal
    }
    case "Objects": {
      const open = ast.indexSignatures.length === 1 && ast.indexSignatures[0]!.type === Json.ast &&
        isExtraKey(ast.indexSignatures[0]!.parameter)
      if (!open) return undefined
      const fields: Array<readonly [string, boolean, Check]> = []
      for (const ps of ast.propertySignatures) {
        const check = compileParsed(ps.type)
        if (check === undefined || typeof ps.name !== "string") return undefined
        fields.push([ps.name, SchemaAST.isOptional(ps.type), check])
      }
      return (u) => {
        if (typeof u !== "object" || u === null || Array.isArray(u)) return false
        const record = u as Record<string, unknown>
        for (const [name, isOptional, check] of fields) {
          const value = record[name]
          if (value === undefined ? !isOptional || Object.hasOwn(record, name) : !check(value)) return false
        }
        return true
      }
    }
    default:
      return undefined
  }
}

const parsedChecks: { readonly [K in Type]?: Check } = Object.fromEntries(
  Object.entries(schemas).flatMap(([type, schema]) => {
    const check = compileParsed(schema.ast)
    return check === undefined ? [] : [[type, check]]
  })
)

/**
 * Validates an already-parsed JSON value as a frame. Never throws.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeUnknown = (u: unknown): Result.Result<Frame, FrameError> => {
  if (!isObject(u)) return Result.fail(FrameError.badRequest(`Expected a JSON object, got ${describe(u)}`))
  const type = u.type
  if (type === undefined) return Result.fail(FrameError.badRequest("Missing message type"))
  if (typeof type !== "string") return Result.fail(FrameError.badRequest("Message type must be a string"))
  if (!isType(type)) return Result.fail(FrameError.badRequest(`Unknown message type ${JSON.stringify(type)}`, type))
  try {
    return Result.mapError(
      validators[type](u),
      (e) => FrameError.badRequest(`Invalid ${type} frame: ${problem(e)}`, type)
    )
  } catch {
    // Only a pathological nesting depth gets here (the validator recurses): refuse it like any bad frame.
    return Result.fail(FrameError.badRequest(`Invalid ${type} frame: nested too deeply`, type))
  }
}

const guard = (key: string, value: unknown) => {
  if (key === "__proto__") throw new Refused("Forbidden key \"__proto__\"")
  if (typeof value === "number" && !Number.isFinite(value)) throw new Refused("Number out of range")
  return value
}
class Refused extends Error {}

/** A number with a three-digit exponent (`1e309`) or over 308 digits can overflow to an infinity in `JSON.parse`. */
const bigExponent = /\d[eE][+-]?\d{3}/
const mayOverflow = (text: string): boolean => {
  if (bigExponent.test(text)) return true
  if (text.length < 309) return false
  let run = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      if (++run > 308) return true
    } else run = 0
  }
  return false
}

/**
 * Parses JSON text. Never throws. `__proto__` keys are refused: assigning them while copying would replace an
 * object's prototype, so no such key may enter the system. Numbers that overflow to an infinity are refused too:
 * JSON cannot carry them (`JSON.stringify` writes `null`), so they could not be forwarded as received.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parseJson = (text: string): Result.Result<unknown, FrameError> => {
  try {
    // The reviver is slow; only text that could spell `__proto__` (directly or through escapes) or hold a number
    // too large for a double pays for it.
    const suspicious = text.includes("__proto__") || text.includes("\\u") || mayOverflow(text)
    return Result.succeed(suspicious ? JSON.parse(text, guard) : JSON.parse(text))
  } catch (e) {
    if (e instanceof Refused) return Result.fail(FrameError.badRequest(e.message))
    return Result.fail(FrameError.badRequest(text.trim() === "" ? "Empty frame" : "Invalid JSON"))
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * Decodes UTF-8 bytes (a binary WebSocket frame). Never throws.
 *
 * @since 0.1.0
 * @category decoding
 */
export const textFromBytes = (bytes: Uint8Array): Result.Result<string, FrameError> => {
  try {
    return Result.succeed(utf8.decode(bytes))
  } catch {
    return Result.fail(FrameError.badRequest("Invalid UTF-8"))
  }
}

/**
 * The single decoding entry point: raw text or bytes to a typed frame, or a 400 `FrameError`. Never throws.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (raw: string | Uint8Array): Result.Result<Frame, FrameError> => {
  const parsed = parse(raw)
  return Result.isFailure(parsed) ? Result.fail(parsed.failure) : decodeParsed(parsed.success)
}

/**
 * Raw text or bytes to the JSON value they hold (UTF-8, then `parseJson`), not yet validated as a frame.
 * Never throws.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parse = (raw: string | Uint8Array): Result.Result<unknown, FrameError> => {
  // Plain branches rather than `Result.flatMap`: this runs for every frame a server receives.
  if (typeof raw === "string") return parseJson(raw)
  const text = textFromBytes(raw)
  return Result.isFailure(text) ? Result.fail(text.failure) : parseJson(text.success)
}

/**
 * Decodes a value that came out of `JSON.parse` (see `parseJson`): the same answers as `decodeUnknown`, through a
 * faster check derived from the schemas (a parsed value holds only JSON, which spares most of the walk).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeParsed = (u: unknown): Result.Result<Frame, FrameError> => {
  if (isObject(u) && isType(u.type)) {
    const check = parsedChecks[u.type]
    if (check !== undefined && check(u)) return Result.succeed(u as Frame)
  }
  return decodeUnknown(u)
}

const validate = Schema.decodeUnknownResult(Schema.toType(Frame), parseOptions)

/**
 * Validates a frame and renders it as wire text. Never throws.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (frame: Frame): Result.Result<string, FrameError> => {
  try {
    return Result.match(validate(frame), {
      onFailure: (e) => Result.fail(FrameError.badRequest(`Invalid ${String(frame.type)} frame: ${problem(e)}`)),
      onSuccess: (valid) => Result.succeed(JSON.stringify(valid))
    })
  } catch {
    // Validation and `JSON.stringify` both recurse: a pathological depth is refused, not thrown.
    return Result.fail(FrameError.badRequest(`Invalid ${String(frame.type)} frame: nested too deeply`))
  }
}

/**
 * Renders a frame the program built itself and whose type already guarantees its shape. This is the hot path of
 * the server, where a frame is written once per send.
 *
 * @since 0.1.0
 * @category encoding
 */
export const unsafeEncode = (frame: Frame): string => JSON.stringify(frame)
