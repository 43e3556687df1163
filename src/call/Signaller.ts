/**
 * The network as a call session sees it: send a `message` frame to a full address, receive message frames, learn
 * which peers went offline, know our own address. A Symple client provides it (`fromClient`); `makeMemoryNetwork`
 * wires sessions together in memory, with the server's routing rules, for tests and demos.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { SympleClient } from "../client/SympleClient.js"
import * as Address from "../protocol/Address.js"
import type * as Frame from "../protocol/Frame.js"
import * as Message from "../protocol/Message.js"
import * as Peer from "../protocol/Peer.js"

/**
 * @since 0.1.0
 * @category errors
 */
export class SignallerError extends Data.TaggedError("SignallerError")<{
  readonly reason: "Offline" | "Unreachable" | "Unknown"
  readonly cause?: unknown
}> {
  override get message(): string {
    return `Cannot send call signal: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Signaller {
  /** Our own full `user|id` address as of now (it changes when a client reconnects). */
  readonly address: Effect.Effect<string>
  /** Sends a message frame (its `to` is a full address; the transport sets `from`). */
  readonly send: (frame: Frame.Message) => Effect.Effect<void, SignallerError>
  /** Every `message` frame received. */
  readonly messages: Stream.Stream<Frame.Message>
  /** Full addresses of peers as they go offline. */
  readonly offline: Stream.Stream<string>
  /** The full addresses of a user's sessions online now (ours included when it is our user). */
  readonly sessionsOf: (user: string) => Effect.Effect<ReadonlyArray<string>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Signaller: Context.Service<Signaller, Signaller> = Context.Service<Signaller>("symple/Signaller")

/**
 * The signalling port of a Symple client: call frames are ordinary `message` frames, and a peer leaving the roster
 * (offline presence) is a peer going offline. Our address is the client's current `user|id` ("" while offline).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromClient = (client: SympleClient): Signaller => ({
  address: Effect.map(client.peer, Option.match({ onNone: () => "", onSome: Peer.address })),
  send: (frame) =>
    client.send(frame).pipe(
      Effect.asVoid,
      Effect.mapError((cause) => new SignallerError({ reason: "Offline", cause }))
    ),
  messages: client.messages,
  offline: Stream.map(client.roster.peerDisconnected, Peer.address),
  sessionsOf: (user) =>
    Effect.map(client.roster.snapshot, (peers) => peers.filter((peer) => peer.user === user).map(Peer.address))
})

/**
 * The `Signaller` of the `SympleClient` in context.
 *
 * Built afresh wherever it is provided: Effect 4 reuses a layer value already built by an enclosing `provide`, so
 * a memoised `layerClient` provided again inside a program that already has one would hand the inner session the
 * outer client's signaller, whatever `SympleClient` the inner `provide` supplies.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient: Layer.Layer<Signaller, never, SympleClient> = Layer.fresh(
  Layer.effect(Signaller, Effect.map(SympleClient, fromClient))
)

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryNetwork {
  /** Joins the network as `user`; leaving the scope takes the peer offline. */
  readonly connect: (user: string) => Effect.Effect<Signaller, never, Scope.Scope>
  /** Takes a peer offline at once, as a dropped connection would. */
  readonly disconnect: (address: string) => Effect.Effect<void>
  /** Every frame routed so far, in order, with `from` set. */
  readonly routed: Effect.Effect<ReadonlyArray<Frame.Message>>
  /** Holds every frame sent from now on until `resume` (to make two signals cross, as in glare). */
  readonly pause: Effect.Effect<void>
  /** Delivers the held frames in order and stops holding. */
  readonly resume: Effect.Effect<void>
}

interface Member {
  readonly address: string
  readonly inbox: PubSub.PubSub<Frame.Message>
  readonly offline: PubSub.PubSub<string>
}

/**
 * An in-memory network: every member shares one room, `from` is set to the sender's true address and a frame
 * addressed to an absent peer is dropped silently, as a Symple server does.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryNetwork: Effect.Effect<MemoryNetwork> = Effect.gen(function*() {
  const members = yield* Ref.make(new Map<string, Member>())
  const log = yield* Ref.make<ReadonlyArray<Frame.Message>>([])
  const held = yield* Ref.make<Option.Option<ReadonlyArray<Effect.Effect<void>>>>(Option.none())

  const deliver = (from: string, routed: Frame.Message) =>
    Effect.gen(function*() {
      if (typeof routed.to !== "string") return
      const to = Address.parse(routed.to)
      for (const m of (yield* Ref.get(members)).values()) {
        if (m.address !== from && Address.parse(m.address).id === to.id) yield* PubSub.publish(m.inbox, routed)
      }
    })

  const disconnect = (address: string) =>
    Effect.gen(function*() {
      const before = yield* Ref.get(members)
      const gone = before.get(address)
      if (gone === undefined) return
      const after = new Map(before)
      after.delete(address)
      yield* Ref.set(members, after)
      yield* PubSub.shutdown(gone.inbox)
      yield* PubSub.shutdown(gone.offline)
      yield* Effect.forEach(after.values(), (m) => PubSub.publish(m.offline, address), { discard: true })
    })

  const connect = (user: string) =>
    Effect.gen(function*() {
      const address = Address.format(Address.make(user, Message.randomId()))
      const member: Member = {
        address,
        inbox: yield* PubSub.unbounded<Frame.Message>(),
        offline: yield* PubSub.unbounded<string>()
      }
      yield* Ref.update(members, (m) => new Map(m).set(address, member))
      yield* Effect.addFinalizer(() => disconnect(address))
      const send = (frame: Frame.Message) =>
        Effect.gen(function*() {
          const current = yield* Ref.get(members)
          if (!current.has(address)) return yield* new SignallerError({ reason: "Offline" })
          const routed: Frame.Message = { ...frame, from: address }
          yield* Ref.update(log, (l) => [...l, routed])
          const holding = yield* Ref.modify(held, (h) =>
            Option.match(h, {
              onNone: () => [false, h] as const,
              onSome: (queue) => [true, Option.some([...queue, deliver(address, routed)])] as const
            }))
          if (!holding) yield* deliver(address, routed)
        })
      return {
        address: Effect.succeed(address),
        send,
        messages: Stream.fromPubSub(member.inbox),
        offline: Stream.fromPubSub(member.offline),
        sessionsOf: (user) =>
          Effect.map(
            Ref.get(members),
            (all) => Array.from(all.keys()).filter((a) => Address.parse(a).user === user)
          )
      } satisfies Signaller
    })

  return {
    connect,
    disconnect,
    routed: Ref.get(log),
    pause: Ref.update(held, (h) => Option.isSome(h) ? h : Option.some([])),
    resume: Effect.flatMap(
      Ref.getAndSet(held, Option.none()),
      (h) => Effect.all(Option.getOrElse(h, () => []), { discard: true })
    )
  }
})
