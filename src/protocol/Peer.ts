/**
 * The peer object carried in `welcome.peer` and presence `data`: a few known fields plus any number of
 * application fields, which survive decoding and encoding untouched.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as Address from "./Address.js"
import { extraKeys, Json } from "./Json.js"

/**
 * Keys the server owns: a client cannot set them through `auth.data` or presence `data`.
 *
 * @since 0.1.0
 * @category constants
 */
export const reservedKeys: ReadonlySet<string> = new Set(["id", "user", "name", "type", "online"])

/**
 * @since 0.1.0
 * @category schemas
 */
const fields = {
  id: Schema.String,
  user: Schema.String,
  name: Schema.optionalKey(Schema.String),
  type: Schema.optionalKey(Schema.String),
  online: Schema.optionalKey(Schema.Boolean),
  host: Schema.optionalKey(Schema.String)
}
export const Peer = Schema.StructWithRest(Schema.Struct(fields), [Schema.Record(extraKeys(Object.keys(fields)), Json)])
  .annotate({ identifier: "Peer" })

/**
 * @since 0.1.0
 * @category models
 */
export type Peer = typeof Peer.Type

/**
 * @since 0.1.0
 * @category conversions
 */
export const address = (peer: Pick<Peer, "user" | "id">): string => Address.format(Address.make(peer.user, peer.id))

/**
 * @since 0.1.0
 * @category decoding
 */
export const decode = Schema.decodeUnknownOption(Peer)
