/**
 * The ICE servers a server hands its clients: a static list, and TURN credentials minted per user by the TURN REST
 * convention that coturn's `use-auth-secret` (with `static-auth-secret`) checks:
 *
 * - username `"<expiry, Unix seconds>:<user>"`;
 * - credential `base64(HMAC-SHA1(secret, username))`.
 *
 * The TURN server needs no list of users: it recomputes the credential from the username with the shared secret,
 * and refuses it once the expiry has passed. Pure but for the clock, which callers pass in.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Crypto from "node:crypto"
import type { IceServer } from "../protocol/IceServer.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface TurnOptions {
  /** The secret shared with the TURN server (coturn's `static-auth-secret`). */
  readonly secret: string
  /** The TURN server's URLs (`turn:host:3478`, `turns:host:5349?transport=tcp`, ...). */
  readonly urls: ReadonlyArray<string>
  /** How long minted credentials stay valid. Default 24 hours. */
  readonly ttl?: Duration.Input | undefined
}

/**
 * What a server hands out: the static list first, then the TURN server with credentials for the user.
 *
 * @since 0.2.0
 * @category models
 */
export interface IceOptions {
  readonly iceServers?: ReadonlyArray<IceServer> | undefined
  readonly turn?: TurnOptions | undefined
}

/**
 * @since 0.2.0
 * @category constants
 */
export const defaultTtl: Duration.Duration = Duration.hours(24)

/**
 * `base64(HMAC-SHA1(secret, username))`: the TURN REST credential for a username.
 *
 * @since 0.2.0
 * @category minting
 */
export const credential = (secret: string, username: string): string =>
  Crypto.createHmac("sha1", secret).update(username).digest("base64")

/**
 * The lifetime of minted credentials, in whole seconds (at least one).
 *
 * @since 0.2.0
 * @category minting
 */
export const ttlSeconds = (turn: TurnOptions): number =>
  Math.max(1, Math.floor(Duration.toSeconds(Duration.fromInputUnsafe(turn.ttl ?? defaultTtl))))

/**
 * The TURN server entry for `user` at `nowMillis`: username `"<expiry>:<user>"` with the expiry `ttl` from now, in
 * Unix seconds, and its credential.
 *
 * @since 0.2.0
 * @category minting
 */
export const turnServer = (turn: TurnOptions, user: string, nowMillis: number): IceServer => {
  const username = `${Math.floor(nowMillis / 1000) + ttlSeconds(turn)}:${user}`
  return { urls: [...turn.urls], username, credential: credential(turn.secret, username) }
}

/**
 * The ICE servers for `user` at `nowMillis`: the static list, then the TURN server with fresh credentials. Empty when
 * nothing is configured.
 *
 * @since 0.2.0
 * @category minting
 */
export const forUser = (options: IceOptions, user: string, nowMillis: number): ReadonlyArray<IceServer> => [
  ...(options.iceServers ?? []),
  ...(options.turn === undefined || options.turn.urls.length === 0 ? [] : [turnServer(options.turn, user, nowMillis)])
]

/**
 * Whether the options configure any ICE server at all (the welcome carries `iceServers` and `GET /ice` answers
 * only then).
 *
 * @since 0.2.0
 * @category guards
 */
export const isConfigured = (options: IceOptions): boolean =>
  (options.iceServers?.length ?? 0) > 0 || (options.turn !== undefined && options.turn.urls.length > 0)
