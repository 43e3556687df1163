/**
 * Owns `GET /ice`: the ICE servers for a user, with TURN credentials minted for it, authenticated as an `auth` frame
 * would be (the same Authenticator, so the same token hook). The token comes as `Authorization: Bearer <token>` or
 * `?token=`, the user as `?user=`; a refusal is a 401 (held back by `authFailureDelay`, as on the socket).
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Frame from "../../protocol/Frame.js"
import type { IceConfiguration } from "../../protocol/IceServer.js"
import * as Message from "../../protocol/Message.js"
import * as IceServers from "../IceServers.js"
import type { Hub } from "./hub.js"

const noStore = { "cache-control": "no-store" }

const refused = (hub: Hub, message: string) =>
  Effect.as(
    Effect.sleep(hub.options.authFailureDelayMillis),
    HttpServerResponse.jsonUnsafe({ status: 401, message }, { status: 401, headers: noStore })
  )

const bearer = (header: string | undefined): string | undefined => {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match === null ? undefined : match[1]
}

const answer = (hub: Hub) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const query = new URL(request.url, "http://localhost").searchParams
    const user = query.get("user") ?? ""
    const token = bearer(request.headers.authorization) ?? query.get("token") ?? undefined
    if (user === "") return yield* refused(hub, "Missing user")
    const auth: Frame.Auth = { type: "auth", user, ...(token === undefined ? {} : { token }) }
    const connecting = { id: Message.randomId(), host: Option.getOrUndefined(request.remoteAddress) }
    const accepted = yield* Effect.result(hub.authenticator.authenticate(auth, connecting))
    if (accepted._tag === "Failure") return yield* refused(hub, accepted.failure.message)
    const body: IceConfiguration = {
      iceServers: IceServers.forUser(hub.options, accepted.success.peer.user, Date.now()),
      ...(hub.options.turn === undefined ? {} : { ttl: IceServers.ttlSeconds(hub.options.turn) })
    }
    return HttpServerResponse.jsonUnsafe(body, { headers: noStore })
  })

/**
 * The `GET /ice` route, for a server whose options configure ICE servers.
 *
 * @since 0.2.0
 * @internal
 */
export const route = (hub: Hub): Layer.Layer<never, never, HttpRouter.HttpRouter> =>
  HttpRouter.add("GET", "/ice", answer(hub))
