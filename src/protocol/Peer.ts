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
  name: Schema.optionalWith(Schema.String, { exact: true }),
  type: Schema.optionalWith(Schema.String, { exact: true }),
  online: Schema.optionalWith(Schema.Boolean, { exact: true }),
  host: Schema.optionalWith(Schema.String, { exact: true })
}
export const Peer = Schema.Struct(fields, Schema.Record({ key: extraKeys(Object.keys(fields)), value: Json })).annotations({ identifier: "Peer" })

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
