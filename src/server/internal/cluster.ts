/**
 * Owns what a broker may do to this node (`Broker.Local`): deliver frames rendered on other nodes to local
 * sessions, announce other nodes' peers to local neighbours, route `symple:broadcast`-style injections locally,
 * hand a detached session over to another node (see `resume`).
 *
 * @since 0.2.0
 * @internal
 */
import type * as Frame from "../../protocol/Frame.js"
import type * as Broker from "../Broker.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import * as Presence from "../Presence.js"
import * as State from "../State.js"
import { deliver, evicted, onlinePresence, toSessions } from "./fanOut.js"
import type { Hub } from "./hub.js"
import * as Resume from "./resume.js"
import { encode } from "./socketWriter.js"

/**
 * The broker's view of this node; `registry` is the server's own (not the broker's wrapper).
 *
 * @since 0.2.0
 * @internal
 */
export const local = (hub: Hub, registry: Broker.Local["registry"]): Broker.Local => ({
  registry,
  claimPersonalRoom: hub.options.authentication,
  deliver: (ids, bytes, frame) => {
    const state = registry.snapshotUnsafe()
    let decoded: Frame.Frame | undefined
    let count = 0
    for (const id of ids) {
      const session = State.session(state, id)
      if (session === undefined || session.member.handle.node !== undefined) continue
      // Connections write the bytes as they came; only virtual peers need the frame itself.
      if (session.virtual) decoded ??= frame()
      session.member.handle.send(bytes, decoded ?? (undefined as unknown as Frame.Frame))
      count++
    }
    hub.stats.delivered += count
    return count
  },
  announce: (peer, sessions, online) => {
    const route = toSessions(sessions)
    if (route.members.length === 0) return
    if (online) {
      const presence = onlinePresence(hub, peer.peer)
      deliver(hub.stats, route, presence.bytes, presence.frame)
    } else {
      const offline = Presence.offline(peer.peer)
      deliver(hub.stats, route, encode(offline), offline)
    }
  },
  evicted: (sessions, room) => evicted(hub.stats)(sessions, room),
  inject: (frame) => {
    const route = hub.router.resolveInjected(registry.snapshotUnsafe(), "to" in frame ? frame.to : undefined)
    const members: Array<State.Member<PeerRegistry.Handle>> = []
    for (const member of route.members) if (member.handle.node === undefined) members.push(member)
    return members.length === 0 ? 0 : deliver(hub.stats, { members, exclude: route.exclude }, encode(frame), frame)
  },
  handOver: (token, user, handle) => Resume.handOver(hub, token, user, handle)
})
