/**
 * A WebRTC call session over Symple signalling. One session handles one call at a time, any number of calls in
 * sequence. Its state (`Idle`, `OutgoingInit`, `IncomingInit`, `Negotiating`, `Active`, `Ending`, `Ended`) is a
 * Stream; the rules live in the pure `CallState.transition`, and this module only runs the instructions it returns,
 * one input at a time.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberHandle from "effect/FiberHandle"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Address from "../protocol/Address.js"
import * as Call from "../protocol/Call.js"
import type * as Frame from "../protocol/Frame.js"
import type { IceServer } from "../protocol/IceServer.js"
import * as Message from "../protocol/Message.js"
import { CallState, Input, type Instruction, type Role, type Timer, transition } from "./CallState.js"
import * as CallStateModule from "./CallState.js"
import type { PeerConnection } from "./PeerConnection.js"
import { Signaller } from "./Signaller.js"

/**
 * @since 0.1.0
 * @category errors
 */
export class CallError extends Data.TaggedError("CallError")<{
  readonly reason: "InvalidAddress" | "InvalidState" | "Unreachable"
  readonly detail: string
}> {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

/**
 * What the peer-connection factory is told about the call it serves.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallInfo {
  readonly callId: number
  readonly remote: string
  readonly role: Role
  /**
   * The ICE servers to create the peer connection with: the `iceServers` option, or else those the signalling
   * server handed out (the `welcome`'s, with TURN credentials for our user). `fromConstructor` passes them on.
   */
  readonly iceServers: ReadonlyArray<IceServer>
}

/**
 * A call ringing for the local user to `accept()` or `reject()`.
 *
 * @since 0.1.0
 * @category models
 */
export interface IncomingCall {
  readonly callId: number
  readonly remote: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CallSessionOptions {
  /**
   * Creates the peer connection of a call. Add tracks and data channels here: the caller's offer is created right
   * after this returns. Errors end the call with `hangup {reason:"failed"}`.
   */
  readonly peerConnection: (call: CallInfo) => Effect.Effect<PeerConnection, unknown>
  /** ICE servers for every call, instead of the ones the signalling server hands out. */
  readonly iceServers?: ReadonlyArray<IceServer> | undefined
  /**
   * How long a call may ring (either side) before it ends with `hangup {reason:"timeout"}`; restarted on accept, it
   * also bounds negotiation. Default 30 s.
   */
  readonly ringTimeout?: Duration.Input | undefined
  /** Upper bound for each peer-connection operation (create/set descriptions, close). Default 10 s. */
  readonly operationTimeout?: Duration.Input | undefined
  /**
   * How long the remote party of an Active call may stay offline (or unheard of after either side reconnected)
   * before the call ends with reason `offline`. The peer connection carries on meanwhile. Default 30 s.
   */
  readonly gracePeriod?: Duration.Input | undefined
  /**
   * How long an Active call's peer connection may stay `disconnected` before the call ends with
   * `hangup {reason:"failed"}`. Default 15 s.
   */
  readonly disconnectedTimeout?: Duration.Input | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CallSession {
  /** The current state first, then every change. */
  readonly state: Stream.Stream<CallState>
  readonly current: Effect.Effect<CallState>
  /** Calls ringing for the local user, as they arrive (a subscriber sees the calls that ring after it subscribed). */
  readonly incomingCall: Stream.Stream<IncomingCall>
  /**
   * Calls a full `user|id` address, or a user: then every online session of that user rings, the first to accept
   * gets the call and the others are told `answered-elsewhere`. Fails with `InvalidState` unless the session is
   * `Idle` or `Ended`, with `Unreachable` when the user has no session online.
   */
  readonly call: (target: string) => Effect.Effect<void, CallError>
  /** Accepts the ringing call. */
  readonly accept: () => Effect.Effect<void, CallError>
  /** Refuses the ringing call (default reason `declined`). */
  readonly reject: (reason?: string) => Effect.Effect<void, CallError>
  /** Ends the call at any stage (default reason `cancelled` while ringing out, `hangup` otherwise). */
  readonly hangup: (reason?: string) => Effect.Effect<void, CallError>
  /**
   * Renegotiates the Active call: sends a new offer, as the peer connection's `negotiationneeded` event (a track
   * added) does by itself. Fails unless the call is Active with no offer of ours outstanding.
   */
  readonly renegotiate: () => Effect.Effect<void, CallError>
  /** The peer connection of the current call, once created. */
  readonly peerConnection: Effect.Effect<Option.Option<PeerConnection>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const CallSession: Context.Service<CallSession, CallSession> = Context.Service<CallSession>(
  "symple/CallSession"
)

interface Envelope {
  readonly input: Input
  readonly done?: Deferred.Deferred<boolean>
}

type Outgoing = { readonly frame: Frame.Message } | { readonly marker: Deferred.Deferred<void> }

interface Attached {
  readonly callId: number
  readonly pc: PeerConnection
  readonly detach: () => void
}

/**
 * Starts a session on the `Signaller` in context. Closing the scope, or the signaller's transport (the client), hangs
 * up a call in progress first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: CallSessionOptions
): Effect.Effect<CallSession, never, Signaller | Scope.Scope> =>
  Effect.gen(function*() {
    const signaller = yield* Signaller
    const ringTimeout = Duration.fromInputUnsafe(options.ringTimeout ?? "30 seconds")
    const operationTimeout = Duration.fromInputUnsafe(options.operationTimeout ?? "10 seconds")
    const state = yield* SubscriptionRef.make<CallState>(CallStateModule.initial)
    const incoming = yield* PubSub.unbounded<IncomingCall>()
    const inputs = yield* Queue.unbounded<Envelope>()
    const peer = yield* Ref.make<Option.Option<Attached>>(Option.none())
    const timers: Record<Timer, FiberHandle.FiberHandle<void, never>> = {
      ring: yield* FiberHandle.make<void, never>(),
      grace: yield* FiberHandle.make<void, never>(),
      disconnected: yield* FiberHandle.make<void, never>()
    }
    const durations: Record<Timer, Duration.Duration> = {
      ring: ringTimeout,
      grace: Duration.fromInputUnsafe(options.gracePeriod ?? "30 seconds"),
      disconnected: Duration.fromInputUnsafe(options.disconnectedTimeout ?? "15 seconds")
    }
    const stopTimers = Effect.forEach(Object.values(timers), (handle) => FiberHandle.clear(handle), { discard: true })

    // Peer-connection callbacks run outside any fiber; the queue is unbounded, so offering never blocks.
    const post = (input: Input) => {
      Queue.offerUnsafe(inputs, { input })
    }

    const sendNow = (frame: Frame.Message) =>
      signaller.send(frame).pipe(
        Effect.catch((e) => Effect.logDebug("call signal not sent", e)),
        Effect.annotateLogs({ module: "CallSession", to: String(frame.to), subtype: String(frame.subtype) })
      )
    // Signals leave in order through one sender, so that a transport waiting to reconnect never stalls the state
    // machine (a hangup must still be processed while an offer waits for the network). A marker in the queue is
    // completed once everything before it has gone.
    const outbox = yield* Queue.unbounded<Outgoing>()
    yield* Queue.take(outbox).pipe(
      Effect.flatMap((item) => "marker" in item ? Deferred.succeed(item.marker, undefined) : sendNow(item.frame)),
      Effect.forever,
      Effect.forkScoped
    )
    const send = (to: string, signal: Call.Signal, uid: string | undefined) =>
      Queue.offer(outbox, { frame: Call.message(to, signal, { callId: uid }) })
    const flush = Effect.gen(function*() {
      const marker = yield* Deferred.make<void>()
      yield* Queue.offer(outbox, { marker })
      yield* Deferred.await(marker)
    })

    const operation = <A>(callId: number, name: string, run: () => Promise<A>) =>
      Effect.tryPromise(run).pipe(
        Effect.timeoutOrElse({
          duration: operationTimeout,
          orElse: () => Effect.fail(new Error(`${name} timed out`))
        }),
        Effect.tapError((e) => Effect.sync(() => post(Input.PeerFailed({ callId, message: `${name}: ${String(e)}` }))))
      )

    const withPeer = (callId: number, f: (pc: PeerConnection) => Effect.Effect<void, unknown>) =>
      Effect.flatMap(Ref.get(peer), (current) => {
        if (Option.isSome(current) && current.value.callId === callId) return f(current.value.pc)
        return Effect.sync(() => post(Input.PeerFailed({ callId, message: "no peer connection" })))
      })

    const attach = (callId: number, pc: PeerConnection): Attached => {
      // Gathering ends with an event without a candidate (browsers may first send an empty line per media
      // section): the remote hears one end-of-candidates marker, for the media section of our last candidate.
      let last: Call.IceCandidate | undefined
      let ended = false
      const onCandidate = (event: { readonly candidate?: unknown }) => {
        const raw = event.candidate
        const candidate = typeof raw === "object" && raw !== null ? Call.iceCandidate(raw) : Option.none()
        if (Option.isSome(candidate) && !Call.isEndOfCandidates(candidate.value)) {
          last = candidate.value
          ended = false
          return post(Input.LocalCandidate({ callId, candidate: candidate.value }))
        }
        if (ended || last === undefined || (Option.isNone(candidate) && raw !== null && raw !== undefined)) return
        ended = true
        const { candidate: _, ...section } = Option.isSome(candidate) && candidate.value.sdpMid !== undefined
          ? candidate.value
          : last
        post(Input.LocalCandidate({ callId, candidate: { candidate: "", ...section } }))
      }
      const onNegotiationNeeded = () => post(Input.NegotiationNeeded({ callId }))
      const onState = () => {
        if (pc.connectionState === "connected") post(Input.Connected({ callId }))
        else if (pc.connectionState === "disconnected") post(Input.Disconnected({ callId }))
        // Our own close() detaches these listeners first, so a "closed" seen here came from somewhere else.
        else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
          post(Input.PeerFailed({ callId, message: `connection ${pc.connectionState}` }))
        }
      }
      pc.addEventListener("icecandidate", onCandidate)
      pc.addEventListener("connectionstatechange", onState)
      pc.addEventListener("negotiationneeded", onNegotiationNeeded)
      return {
        callId,
        pc,
        detach: () => {
          pc.removeEventListener("icecandidate", onCandidate)
          pc.removeEventListener("connectionstatechange", onState)
          pc.removeEventListener("negotiationneeded", onNegotiationNeeded)
        }
      }
    }

    const closePeer = Effect.flatMap(Ref.getAndSet(peer, Option.none()), (current) =>
      Option.match(current, {
        onNone: () => Effect.void,
        onSome: ({ detach, pc }) =>
          Effect.sync(detach).pipe(
            Effect.andThen(Effect.tryPromise(async () => await pc.close())),
            Effect.timeout(operationTimeout),
            Effect.ignore
          )
      }))

    const localSdp = (pc: PeerConnection, created: { readonly sdp?: string | null | undefined }): string =>
      pc.localDescription?.sdp ?? created.sdp ?? ""

    const run = (instruction: Instruction): Effect.Effect<void> => {
      switch (instruction._tag) {
        case "Send":
          return send(instruction.to, instruction.signal, instruction.uid)
        case "Ring":
          return PubSub.publish(incoming, { callId: instruction.callId, remote: instruction.remote })
        case "StartTimer": {
          const { callId, timer } = instruction
          return FiberHandle.run(
            timers[timer],
            Effect.sleep(durations[timer]).pipe(
              Effect.andThen(Effect.sync(() => post(Input.Timeout({ callId, timer }))))
            )
          ).pipe(Effect.asVoid)
        }
        case "StopTimer":
          return FiberHandle.clear(timers[instruction.timer])
        case "OpenPeer": {
          const { callId, remote, role } = instruction
          return closePeer.pipe(
            Effect.andThen(
              options.iceServers === undefined ? signaller.iceServers : Effect.succeed(options.iceServers)
            ),
            Effect.flatMap((iceServers) => options.peerConnection({ callId, remote, role, iceServers })),
            Effect.flatMap((pc) => Ref.set(peer, Option.some(attach(callId, pc)))),
            Effect.catchCause((cause) =>
              Effect.sync(() => post(Input.PeerFailed({ callId, message: `peer connection: ${String(cause)}` })))
            )
          )
        }
        case "SendOffer": {
          const { callId, remote, uid } = instruction
          return withPeer(callId, (pc) =>
            Effect.gen(function*() {
              const offer = yield* operation(callId, "createOffer", () => pc.createOffer())
              yield* operation(
                callId,
                "setLocalDescription",
                () => pc.setLocalDescription({ type: "offer", sdp: offer.sdp ?? "" })
              )
              yield* send(remote, Call.Signal.Offer({ sdp: localSdp(pc, offer) }), uid)
            })).pipe(Effect.ignore)
        }
        case "AnswerOffer": {
          const { callId, remote, rollback, sdp, uid } = instruction
          return withPeer(callId, (pc) =>
            Effect.gen(function*() {
              if (rollback) yield* operation(callId, "rollback", () => pc.setLocalDescription({ type: "rollback" }))
              yield* operation(callId, "setRemoteDescription", () => pc.setRemoteDescription({ type: "offer", sdp }))
              const answer = yield* operation(callId, "createAnswer", () => pc.createAnswer())
              yield* operation(
                callId,
                "setLocalDescription",
                () => pc.setLocalDescription({ type: "answer", sdp: answer.sdp ?? "" })
              )
              yield* send(remote, Call.Signal.Answer({ sdp: localSdp(pc, answer) }), uid)
            })).pipe(Effect.ignore)
        }
        case "ApplyAnswer": {
          const { callId, sdp } = instruction
          return withPeer(
            callId,
            (pc) => operation(callId, "setRemoteDescription", () => pc.setRemoteDescription({ type: "answer", sdp }))
          ).pipe(Effect.ignore)
        }
        case "AddCandidate": {
          const { callId, candidate } = instruction
          return Effect.flatMap(Ref.get(peer), (current) => {
            if (Option.isNone(current) || current.value.callId !== callId) return Effect.void
            const pc = current.value.pc
            // One unusable candidate must not end the call; the others may still connect it.
            return Effect.tryPromise(() => pc.addIceCandidate(candidate)).pipe(
              Effect.timeout(operationTimeout),
              Effect.catch((e) => Effect.logDebug("remote candidate refused", e))
            )
          })
        }
        case "ClosePeer": {
          const callId = instruction.callId
          return stopTimers.pipe(
            Effect.andThen(closePeer),
            Effect.andThen(Effect.sync(() => post(Input.Closed({ callId }))))
          )
        }
      }
    }

    const step = (envelope: Envelope) =>
      Effect.gen(function*() {
        const self = yield* signaller.address
        const before = yield* SubscriptionRef.get(state)
        const next = transition({ self }, before, envelope.input)
        if (next.state !== before) yield* SubscriptionRef.set(state, next.state)
        for (const instruction of next.instructions) yield* run(instruction)
        if (envelope.done !== undefined) yield* Deferred.succeed(envelope.done, !next.ignored)
      })

    yield* Queue.take(inputs).pipe(Effect.flatMap(step), Effect.forever, Effect.forkScoped)
    // Started at once, so that a stream that subscribes synchronously (a PubSub) is subscribed before `make` returns
    // and anyone can call us; the yields give the others (a transport that subscribes asynchronously) a chance too.
    yield* signaller.messages.pipe(
      Stream.runForEach((frame) =>
        Effect.sync(() =>
          Option.map(Call.parse(frame), ({ callId, from, signal }) => post(Input.Remote({ from, signal, uid: callId })))
        )
      ),
      Effect.forkScoped({ startImmediately: true })
    )
    yield* signaller.offline.pipe(
      Stream.runForEach((address) => Effect.sync(() => post(Input.PeerOffline({ address })))),
      Effect.forkScoped({ startImmediately: true })
    )
    yield* signaller.online.pipe(
      Stream.runForEach((address) => Effect.sync(() => post(Input.PeerOnline({ address })))),
      Effect.forkScoped({ startImmediately: true })
    )
    // Our address changing (a reconnection without resume) is news for the remote party of an Active call.
    let known = ""
    yield* signaller.addresses.pipe(
      Stream.runForEach((address) =>
        Effect.sync(() => {
          if (address === "") return
          if (known !== "" && address !== known) post(Input.Reconnected({ address }))
          known = address
        })
      ),
      Effect.forkScoped({ startImmediately: true })
    )
    yield* Effect.yieldNow
    yield* Effect.yieldNow

    // Registered last, so it runs first on close: a call in progress is hung up (every ring of a call ringing out)
    // while the network is still there.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const self = yield* signaller.address
        const { instructions } = transition({ self }, yield* SubscriptionRef.get(state), Input.Hangup({}))
        const hangups = instructions.flatMap((i) =>
          i._tag === "Send" ? [Call.message(i.to, i.signal, { callId: i.uid })] : []
        )
        yield* Effect.forEach(hangups, sendNow, { concurrency: "unbounded", discard: true }).pipe(
          Effect.timeout(operationTimeout),
          Effect.ignore
        )
        yield* stopTimers
        yield* closePeer
      })
    )

    const local = (input: Input) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<boolean>()
        yield* Queue.offer(inputs, { input, done })
        if (yield* Deferred.await(done)) return
        const current = yield* SubscriptionRef.get(state)
        return yield* new CallError({
          reason: "InvalidState",
          detail: `cannot ${input._tag.toLowerCase()} while ${current._tag}`
        })
      })

    // A client closed by its user hangs up first: the hangup is sent before the client's close frame.
    yield* signaller.beforeClose(
      local(Input.Hangup({})).pipe(
        Effect.ignore,
        Effect.andThen(flush),
        Effect.timeout(operationTimeout),
        Effect.ignore
      )
    )

    return CallSession.of({
      state: SubscriptionRef.changes(state),
      current: SubscriptionRef.get(state),
      incomingCall: Stream.fromPubSub(incoming),
      call: (target) =>
        Effect.gen(function*() {
          const self = yield* signaller.address
          const address = Address.parse(target)
          const user = !Address.hasSeparator(target) && target !== ""
          if ((!Address.isFull(address) && !user) || target === self) {
            return yield* new CallError({ reason: "InvalidAddress", detail: `not a peer address or a user: ${target}` })
          }
          const sessions = user ? (yield* signaller.sessionsOf(target)).filter((s) => s !== self) : [target]
          if (sessions.length === 0) {
            return yield* new CallError({ reason: "Unreachable", detail: `no session of ${target} is online` })
          }
          yield* local(Input.Dial({ remote: target, sessions, uid: Message.randomId() }))
        }),
      accept: () => local(Input.Accept()),
      reject: (reason = Call.Reason.declined) => local(Input.Reject({ reason })),
      hangup: (reason) => local(Input.Hangup({ reason })),
      renegotiate: () =>
        Effect.flatMap(SubscriptionRef.get(state), ({ callId }) => local(Input.NegotiationNeeded({ callId }))),
      peerConnection: Effect.map(Ref.get(peer), Option.map((a) => a.pc))
    })
  })

/**
 * A `peerConnection` factory from an `RTCPeerConnection` constructor (the browser's, or werift's): each call's peer
 * connection gets `configuration` with the call's ICE servers (when there are any; otherwise the configuration's
 * own, or the constructor's default), then `setup` adds its tracks and data channels.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromConstructor = <PC extends PeerConnection, C extends object>(
  Constructor: new(configuration: C) => PC,
  options: {
    readonly configuration?: NoInfer<C> | undefined
    readonly setup?: ((pc: PC, call: CallInfo) => void) | undefined
  } = {}
) =>
(call: CallInfo): Effect.Effect<PC, unknown> =>
  Effect.try(() => {
    // The constructor's own `iceServers` type (an RTCIceServer array) takes the wire shape as it is.
    const iceServers = call.iceServers.map((server) => ({ ...server, urls: copy(server.urls) }))
    const configuration = { ...options.configuration, ...(iceServers.length > 0 ? { iceServers } : {}) }
    const pc = new Constructor(configuration as C)
    options.setup?.(pc, call)
    return pc
  })

const copy = (urls: string | ReadonlyArray<string>): string | Array<string> =>
  typeof urls === "string" ? urls : [...urls]

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: CallSessionOptions): Layer.Layer<CallSession, never, Signaller> =>
  Layer.effect(CallSession, make(options))

/**
 * Waits until the session's state satisfies a predicate, and returns that state.
 *
 * @since 0.1.0
 * @category combinators
 */
export const awaitState = <S extends CallState>(
  session: CallSession,
  predicate: (state: CallState) => state is S
): Effect.Effect<S> =>
  session.state.pipe(
    Stream.filter(predicate),
    Stream.runHead,
    Effect.flatMap(Option.match({ onNone: () => Effect.never, onSome: Effect.succeed }))
  )

/**
 * A predicate on the state's tag, for `awaitState`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTag = <T extends CallState["_tag"]>(tag: T) =>
(state: CallState): state is Extract<CallState, {
  readonly _tag: T
}> => state._tag === tag

export { CallState }
