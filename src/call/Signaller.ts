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
import * as SubscriptionRef from "effect/SubscriptionRef"
import { SympleClient } from "../client/SympleClient.js"
import * as Address from "../protocol/Address.js"
import type * as Frame from "../protocol/Frame.js"
import type { IceServer } from "../protocol/IceServer.js"
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
  /**
   * Full addresses of peers as they go offline. A transport that drops reports every peer it knew (it cannot tell
   * who is still there), and `online` again those it finds back.
   */
  readonly offline: Stream.Stream<string>
  /** Full addresses of peers as they come online. */
  readonly online: Stream.Stream<string>
  /**
   * Our own address now and each time it changes ("" while offline): a reconnection that does not resume its session
   * comes back under a new address.
   */
  readonly addresses: Stream.Stream<string>
  /** The full addresses of a user's sessions online now (ours included when it is our user). */
  readonly sessionsOf: (user: string) => Effect.Effect<ReadonlyArray<string>>
  /** The ICE servers the signalling server handed out (with TURN credentials for our user), if it did. */
  readonly iceServers: Effect.Effect<ReadonlyArray<IceServer>>
  /**
   * Runs `effect` when the transport is closed for good (its user closes the client), before it goes, for as long
   * as the scope is open: a call session hangs up there.
   */
  readonly beforeClose: (effect: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Signaller: Context.Service<Signaller, Signaller> = Context.Service<Signaller>("symple/Signaller")

/**
 * The signalling port of a Symple client: call frames are ordinary `message` frames, and a peer leaving the roster
 * (offline presence) is a peer going offline. Our address is the client's current `user|id` ("" while offline); the
 * ICE servers are those of the current session's `welcome`.
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
  online: Stream.map(client.roster.peerConnected, Peer.address),
  addresses: client.state.pipe(
    Stream.map((state) => state._tag === "Online" ? Peer.address(state.peer) : ""),
    Stream.changes
  ),
  sessionsOf: (user) =>
    Effect.map(client.roster.snapshot, (peers) => peers.filter((peer) => peer.user === user).map(Peer.address)),
  beforeClose: client.beforeClose,
  iceServers: Effect.map(
    client.welcome,
    Option.match({ onNone: () => [], onSome: (welcome) => welcome.iceServers ?? [] })
  )
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
  /** Joins the network as `user`, handed `iceServers` (none by default); leaving the scope takes the peer offline. */
  readonly connect: (
    user: string,
    options?: { readonly iceServers?: ReadonlyArray<IceServer> | undefined }
  ) => Effect.Effect<Signaller, never, Scope.Scope>
  /** Takes a peer offline at once, as a dropped connection would (its session hears nothing of it). */
  readonly disconnect: (address: string) => Effect.Effect<void>
  /** Closes a peer as its user would close its client: its `beforeClose` effects run first, then it goes offline. */
  readonly close: (address: string) => Effect.Effect<void>
  /**
   * A peer's connection drops and comes back, as a client reconnecting does: the peer sees everyone go offline and
   * come back, the others see it go offline and come back under a new address (the same one with `keepAddress`, as
   * a resumed session would, though a real resume shows the others nothing). Returns its address.
   */
  readonly reconnect: (address: string, options?: { readonly keepAddress?: boolean | undefined }) => Effect.Effect<
    string
  >
  /** Every peer reconnects under a new address at once, as after a server restart. */
  readonly restart: Effect.Effect<void>
  /** Every frame routed so far, in order, with `from` set. */
  readonly routed: Effect.Effect<ReadonlyArray<Frame.Message>>
  /** Holds every frame sent from now on until `resume` (to make two signals cross, as in glare). */
  readonly pause: Effect.Effect<void>
  /** Delivers the held frames in order and stops holding. */
  readonly resume: Effect.Effect<void>
}

interface Member {
  readonly user: string
  readonly address: SubscriptionRef.SubscriptionRef<string>
  readonly inbox: PubSub.PubSub<Frame.Message>
  readonly offline: PubSub.PubSub<string>
  readonly online: PubSub.PubSub<string>
  readonly closing: Set<Effect.Effect<void>>
}

/**
 * An in-memory network: every member shares one room, `from` is set to the sender's true address, a frame
 * addressed to a user goes to each of that user's sessions, and a frame addressed to an absent peer is dropped
 * silently, as a Symple server does.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryNetwork: Effect.Effect<MemoryNetwork> = Effect.gen(function*() {
  // Members by their current address.
  const members = yield* Ref.make(new Map<string, Member>())
  const log = yield* Ref.make<ReadonlyArray<Frame.Message>>([])
  const held = yield* Ref.make<Option.Option<ReadonlyArray<Effect.Effect<void>>>>(Option.none())
  const newAddress = (user: string) => Address.format(Address.make(user, Message.randomId()))

  const deliver = (from: string, routed: Frame.Message) =>
    Effect.gen(function*() {
      if (typeof routed.to !== "string") return
      const to = Address.parse(routed.to)
      for (const [address, m] of yield* Ref.get(members)) {
        if (address === from) continue
        const match = to.id === "" ? m.user === to.user : Address.parse(address).id === to.id
        if (match) yield* PubSub.publish(m.inbox, routed)
      }
    })

  const announce = (to: Iterable<Member>, hub: "offline" | "online", address: string) =>
    Effect.forEach(to, (m) => PubSub.publish(m[hub], address), { discard: true })

  const disconnect = (address: string) =>
    Effect.gen(function*() {
      const before = yield* Ref.get(members)
      const gone = before.get(address)
      if (gone === undefined) return
      const after = new Map(before)
      after.delete(address)
      yield* Ref.set(members, after)
      yield* SubscriptionRef.set(gone.address, "")
      yield* PubSub.shutdown(gone.inbox)
      yield* PubSub.shutdown(gone.offline)
      yield* PubSub.shutdown(gone.online)
      yield* announce(after.values(), "offline", address)
    })

  /** Moves members to new addresses: everyone concerned sees them leave first, then come back. */
  const move = (addresses: ReadonlyArray<string>, keepAddress: boolean) =>
    Effect.gen(function*() {
      const before = yield* Ref.get(members)
      const moving = addresses.flatMap((a) => {
        const m = before.get(a)
        return m === undefined ? [] : [[a, m] as const]
      })
      const others = (a: string) => Array.from(before).filter(([b]) => b !== a).map(([, m]) => m)
      for (const [address, member] of moving) {
        // The mover's client clears its roster; the others see it leave.
        for (const [other] of Array.from(before).filter(([b]) => b !== address)) {
          yield* PubSub.publish(member.offline, other)
        }
        yield* announce(others(address), "offline", address)
      }
      const after = new Map(before)
      const arrived: Array<readonly [string, Member]> = []
      for (const [address, member] of moving) {
        const next = keepAddress ? address : newAddress(member.user)
        after.delete(address)
        after.set(next, member)
        arrived.push([next, member])
      }
      yield* Ref.set(members, after)
      for (const [address, member] of arrived) yield* SubscriptionRef.set(member.address, address)
      for (const [address, member] of arrived) {
        for (const other of Array.from(after.keys()).filter((b) => b !== address)) {
          yield* PubSub.publish(member.online, other)
        }
        yield* announce(Array.from(after).filter(([b]) => b !== address).map(([, m]) => m), "online", address)
      }
      return arrived.map(([address]) => address)
    })

  const connect = (user: string, options?: { readonly iceServers?: ReadonlyArray<IceServer> | undefined }) =>
    Effect.gen(function*() {
      const iceServers = options?.iceServers ?? []
      const address = newAddress(user)
      const member: Member = {
        user,
        address: yield* SubscriptionRef.make(address),
        inbox: yield* PubSub.unbounded<Frame.Message>(),
        offline: yield* PubSub.unbounded<string>(),
        online: yield* PubSub.unbounded<string>(),
        closing: new Set()
      }
      yield* Ref.update(members, (m) => new Map(m).set(address, member))
      yield* Effect.addFinalizer(() => Effect.flatMap(SubscriptionRef.get(member.address), disconnect))
      const send = (frame: Frame.Message) =>
        Effect.gen(function*() {
          const from = yield* SubscriptionRef.get(member.address)
          if ((yield* Ref.get(members)).get(from) !== member) return yield* new SignallerError({ reason: "Offline" })
          const routed: Frame.Message = { ...frame, from }
          yield* Ref.update(log, (l) => [...l, routed])
          const holding = yield* Ref.modify(held, (h) =>
            Option.match(h, {
              onNone: () => [false, h] as const,
              onSome: (queue) => [true, Option.some([...queue, deliver(from, routed)])] as const
            }))
          if (!holding) yield* deliver(from, routed)
        })
      return {
        address: SubscriptionRef.get(member.address),
        send,
        messages: Stream.fromPubSub(member.inbox),
        offline: Stream.fromPubSub(member.offline),
        online: Stream.fromPubSub(member.online),
        addresses: SubscriptionRef.changes(member.address),
        sessionsOf: (user) =>
          Effect.map(Ref.get(members), (all) => Array.from(all.keys()).filter((a) => Address.parse(a).user === user)),
        iceServers: Effect.succeed(iceServers),
        beforeClose: (effect) =>
          Effect.acquireRelease(
            Effect.sync(() => member.closing.add(effect)),
            () => Effect.sync(() => member.closing.delete(effect))
          ).pipe(Effect.asVoid)
      } satisfies Signaller
    })

  return {
    connect,
    disconnect,
    close: (address) =>
      Effect.gen(function*() {
        const member = (yield* Ref.get(members)).get(address)
        if (member === undefined) return
        yield* Effect.all(Array.from(member.closing), { concurrency: "unbounded", discard: true })
        yield* disconnect(address)
      }),
    reconnect: (address, options) =>
      Effect.map(move([address], options?.keepAddress === true), (moved) => moved[0] ?? address),
    restart: Effect.flatMap(Ref.get(members), (all) => move(Array.from(all.keys()), false)).pipe(Effect.asVoid),
    routed: Ref.get(log),
    pause: Ref.update(held, (h) => Option.isSome(h) ? h : Option.some([])),
    resume: Effect.flatMap(
      Ref.getAndSet(held, Option.none()),
      (h) => Effect.all(Option.getOrElse(h, () => []), { discard: true })
    )
  }
})
