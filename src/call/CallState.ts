/**
 * The call state machine as a pure function: `(context, state, input) -> state + instructions`. Everything that touches
 * the network, the peer connection or the clock is an instruction the interpreter (`CallSession`) runs in order, and
 * every outcome it observes comes back as an input. Keeping it pure is what lets the tests throw arbitrary
 * interleavings of remote frames and local actions at it.
 *
 * Every call gets a number (`callId`). Inputs produced by a call's peer connection or timer carry it, so anything
 * left over from an earlier call is recognised and ignored.
 *
 * A call to a user rings every session of that user at once (one `call:init` each). The first `call:accept` wins and
 * every other ringing session is sent `call:hangup {reason:"answered-elsewhere"}`; a session that rejects only stops
 * ringing itself, and the call fails once every session has rejected (or gone offline, or on the ring timeout).
 *
 * An Active call outlives signalling blips. It ends on a hangup (either side), on its peer connection failing
 * (`failed` or `closed`, or `disconnected` for longer than a timeout), or on the remote party staying offline for
 * longer than a grace period; the remote coming back (the same address, as a resumed session does) or announcing a
 * new one (`call:moved`, after reconnecting without resume) keeps it going. When our own address changes, we
 * announce it the same way.
 *
 * Either side of an Active call may renegotiate (a track added): its `call:offer` is answered and applied, and when
 * both offer at once the glare rule of the first offer applies (the lower address keeps its offer).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Address from "../protocol/Address.js"
import * as Call from "../protocol/Call.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Role = "caller" | "callee"

/**
 * Who ended a call.
 *
 * @since 0.1.0
 * @category models
 */
export type EndedBy = "local" | "remote"

/**
 * The timers a call runs. `ring` bounds ringing, and is restarted on accept so that it also bounds negotiation;
 * `grace` runs while the remote party of an Active call is offline; `disconnected` while its peer connection is.
 *
 * @since 0.2.0
 * @category models
 */
export type Timer = "ring" | "grace" | "disconnected"

/**
 * @since 0.1.0
 * @category models
 */
export type CallState = Data.TaggedEnum<{
  /** No call yet. */
  Idle: { readonly callId: number }
  /**
   * We sent `call:init` to every session in `ringing` and wait for one of them to accept. `remote` is who was
   * called: a full address, or a user (whose every session rings). `declined` holds the reasons of the sessions that
   * rejected so far.
   */
  OutgoingInit: {
    readonly callId: number
    readonly remote: string
    readonly uid: string
    readonly ringing: ReadonlyArray<string>
    readonly declined: ReadonlyArray<string>
  }
  /** We received `call:init` and wait for the local user. */
  IncomingInit: { readonly callId: number; readonly remote: string; readonly uid: string | undefined }
  /** Accepted: offer, answer and candidates flow. Remote candidates wait in `pending` until the remote
   * description is set. */
  Negotiating: {
    readonly callId: number
    readonly remote: string
    readonly uid: string | undefined
    readonly role: Role
    readonly remoteDescription: boolean
    readonly pending: ReadonlyArray<Call.IceCandidate>
  }
  /**
   * The peer connection is connected. `away`: the remote party is offline (the grace timer runs);
   * `disconnected`: the peer connection is (the disconnected timer runs); `offering`: we sent an offer to
   * renegotiate and wait for its answer.
   */
  Active: {
    readonly callId: number
    readonly remote: string
    readonly uid: string | undefined
    readonly role: Role
    readonly away: boolean
    readonly disconnected: boolean
    readonly offering: boolean
  }
  /** The call is over; the peer connection is being closed. */
  Ending: { readonly callId: number; readonly remote: string; readonly reason: string; readonly by: EndedBy }
  /** The call is over. A new call may start from here. */
  Ended: { readonly callId: number; readonly remote: string; readonly reason: string; readonly by: EndedBy }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const CallState = Data.taggedEnum<CallState>()

/**
 * @since 0.1.0
 * @category constructors
 */
export const initial: CallState = CallState.Idle({ callId: 0 })

/**
 * Every live state carries the call's id on the wire (`uid`, sent as `data.callId`): ours when we placed the call,
 * the caller's when it gave one (a reference peer does not, and then the call has none).
 *
 * Everything that can happen to a session.
 *
 * @since 0.1.0
 * @category models
 */
export type Input = Data.TaggedEnum<{
  /**
   * Local: start a call. `remote` is a full address, or a user; `sessions` are the full addresses to ring (for a
   * full address, that address alone is rung whatever `sessions` says).
   */
  Dial: { readonly remote: string; readonly sessions: ReadonlyArray<string>; readonly uid: string }
  /** Local: accept the ringing incoming call. */
  Accept: {}
  /** Local: refuse the ringing incoming call. */
  Reject: { readonly reason: string }
  /** Local: end the call, whatever its stage (default reason `cancelled` while ringing out, `hangup` otherwise). */
  Hangup: { readonly reason?: string | undefined }
  /** A call signal from the network, with the call id it carried. */
  Remote: { readonly from: string; readonly signal: Call.Signal; readonly uid?: string | undefined }
  /** A peer went offline (roster; a client clearing its roster while it reconnects reports everyone). */
  PeerOffline: { readonly address: string }
  /** A peer came online (roster). */
  PeerOnline: { readonly address: string }
  /** Our own address changed: the client reconnected under a new session. */
  Reconnected: { readonly address: string }
  /** A timer of a call fired. */
  Timeout: { readonly callId: number; readonly timer: Timer }
  /** The peer connection of a call gathered a local candidate. */
  LocalCandidate: { readonly callId: number; readonly candidate: Call.IceCandidate }
  /** The peer connection of a call is connected. */
  Connected: { readonly callId: number }
  /** The peer connection of a call is disconnected (it may recover by itself). */
  Disconnected: { readonly callId: number }
  /**
   * The peer connection of a call needs a new offer (a track was added): an Active call renegotiates. Before Active
   * it is ignored, since the first offer is still being made.
   */
  NegotiationNeeded: { readonly callId: number }
  /** The peer connection of a call failed, or an operation on it did. */
  PeerFailed: { readonly callId: number; readonly message: string }
  /** The peer connection of a call has been closed. */
  Closed: { readonly callId: number }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const Input = Data.taggedEnum<Input>()

/**
 * What the interpreter must do, in order.
 *
 * @since 0.1.0
 * @category models
 */
export type Instruction = Data.TaggedEnum<{
  /** Send a signal to a full address (to a user for `Moved`), with the call id it belongs to. */
  Send: { readonly to: string; readonly signal: Call.Signal; readonly uid: string | undefined }
  /** Tell the application a call is ringing. */
  Ring: { readonly callId: number; readonly remote: string }
  /** Start (or restart) a timer; it reports `Timeout` with this id. */
  StartTimer: { readonly callId: number; readonly timer: Timer }
  /** Stop a timer, if it runs. */
  StopTimer: { readonly timer: Timer }
  /** Create the call's peer connection. */
  OpenPeer: { readonly callId: number; readonly remote: string; readonly role: Role }
  /** Create an offer, set it as the local description and send it as `call:offer`. */
  SendOffer: { readonly callId: number; readonly remote: string; readonly uid: string | undefined }
  /**
   * Set the remote offer, create an answer, set it locally and send it as `call:answer`; with `rollback`, take our
   * own pending offer back first (we lost glare while renegotiating).
   */
  AnswerOffer: {
    readonly callId: number
    readonly remote: string
    readonly uid: string | undefined
    readonly sdp: string
    readonly rollback: boolean
  }
  /** Set the remote answer. */
  ApplyAnswer: { readonly callId: number; readonly sdp: string }
  /** Add a remote candidate (only ever emitted after the remote description). */
  AddCandidate: { readonly callId: number; readonly candidate: Call.IceCandidate }
  /** Stop every timer, close the call's peer connection (if any), then report `Closed`. */
  ClosePeer: { readonly callId: number }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const Instruction = Data.taggedEnum<Instruction>()

/**
 * @since 0.1.0
 * @category models
 */
export interface Context {
  /** Our own full address, used to break glare. */
  readonly self: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Step {
  readonly state: CallState
  readonly instructions: ReadonlyArray<Instruction>
  /** True when the input made no sense in this state and was dropped (local actions report it to the caller). */
  readonly ignored: boolean
}

const ignore = (state: CallState): Step => ({ state, instructions: [], ignored: true })
const go = (state: CallState, instructions: ReadonlyArray<Instruction> = []): Step => ({
  state,
  instructions,
  ignored: false
})

/**
 * The remote party of a state, if it has one (for a call ringing out: who was called).
 *
 * @since 0.1.0
 * @category getters
 */
export const remoteOf = (state: CallState): string | undefined => state._tag === "Idle" ? undefined : state.remote

/**
 * The full addresses a state's call is with: the sessions still ringing for a call ringing out, the remote party of
 * a call under way, nobody otherwise. Only they may move the call.
 *
 * @since 0.2.0
 * @category getters
 */
export const partiesOf = (state: CallState): ReadonlyArray<string> => {
  switch (state._tag) {
    case "OutgoingInit":
      return state.ringing
    case "IncomingInit":
    case "Negotiating":
    case "Active":
      return [state.remote]
    default:
      return []
  }
}

/**
 * Whether a call is under way (ringing, negotiating, connected or closing): a new `call:init` gets `busy`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isBusy = (state: CallState): boolean => state._tag !== "Idle" && state._tag !== "Ended"

/**
 * Whether the state holds a call that has not started ending.
 *
 * @since 0.1.0
 * @category guards
 */
export const isLive = (state: CallState): boolean => isBusy(state) && state._tag !== "Ending"

/**
 * Deterministic glare rule: when two peers call each other at once, the call placed by the lower address (plain
 * string order of `user|id`) goes on and the other peer answers it.
 *
 * @since 0.1.0
 * @category glare
 */
export const winsGlare = (self: string, remote: string): boolean => self < remote

/**
 * Why a call rung on several sessions failed once none of them rings any more: the reason they all gave when they
 * agree (a single session's own reason, `busy` from every device, `timeout` everywhere), `declined` otherwise.
 *
 * @since 0.2.0
 * @category getters
 */
export const declineReason = (reasons: ReadonlyArray<string>): string =>
  reasons.length > 0 && reasons.every((r) => r === reasons[0]) ? reasons[0]! : Call.Reason.declined

type Live = Extract<CallState, { readonly _tag: "OutgoingInit" | "IncomingInit" | "Negotiating" | "Active" }>

const isLiveState = (state: CallState): state is Live => isLive(state) && state._tag !== "Idle"

const end = (state: Live, reason: string, by: EndedBy, notify: ReadonlyArray<Instruction> = []): Step =>
  go(CallState.Ending({ callId: state.callId, remote: state.remote, reason, by }), [
    ...notify,
    Instruction.ClosePeer({ callId: state.callId })
  ])

const send = (state: Live, to: string, signal: Call.Signal): Instruction =>
  Instruction.Send({ to, signal, uid: state.uid })

/** A hangup to every party of the call (every session still ringing, or the remote). */
const hangupAll = (state: Live, reason: string, except?: string): ReadonlyArray<Instruction> =>
  partiesOf(state).filter((to) => to !== except).map((to) => send(state, to, Call.Signal.Hangup({ reason })))

const startNegotiating = (callId: number, remote: string, uid: string | undefined, role: Role): CallState =>
  CallState.Negotiating({ callId, remote, uid, role, remoteDescription: false, pending: [] })

/** A session stopped ringing without answering (rejected, hung up, went offline): the call ends with the last one. */
const stopRinging = (
  state: Extract<CallState, { readonly _tag: "OutgoingInit" }>,
  session: string,
  reason: string | undefined
): Step => {
  const ringing = state.ringing.filter((s) => s !== session)
  const declined = reason === undefined ? state.declined : [...state.declined, reason]
  if (ringing.length > 0) return go(CallState.OutgoingInit({ ...state, ringing, declined }))
  return end(state, declined.length > 0 ? declineReason(declined) : Call.Reason.offline, "remote")
}

const sessionsToRing = (context: Context, input: Extract<Input, { readonly _tag: "Dial" }>): ReadonlyArray<string> => {
  const target = Address.parse(input.remote)
  const candidates = Address.isFull(target) ? [input.remote] : input.sessions
  return candidates.filter((s, i) => {
    const address = Address.parse(s)
    return Address.isFull(address) && s !== context.self && candidates.indexOf(s) === i &&
      (Address.isFull(target) || address.user === target.user)
  })
}

/**
 * The transition function. Total: any input in any state gives a legal state; inputs that make no sense are
 * ignored (`ignored: true`, same state, no instructions).
 *
 * @since 0.1.0
 * @category transitions
 */
export const transition = (context: Context, state: CallState, input: Input): Step => {
  switch (input._tag) {
    case "Dial": {
      if (isBusy(state)) return ignore(state)
      const target = Address.parse(input.remote)
      const valid = Address.isFull(target) || (target.user !== "" && !Address.hasSeparator(input.remote))
      if (!valid || input.remote === context.self) return ignore(state)
      const ringing = sessionsToRing(context, input)
      if (ringing.length === 0) return ignore(state)
      const callId = state.callId + 1
      const { uid } = input
      return go(CallState.OutgoingInit({ callId, remote: input.remote, uid, ringing, declined: [] }), [
        ...ringing.map((to) => Instruction.Send({ to, signal: Call.Signal.Init(), uid })),
        Instruction.StartTimer({ callId, timer: "ring" })
      ])
    }
    case "Accept": {
      if (state._tag !== "IncomingInit") return ignore(state)
      return go(startNegotiating(state.callId, state.remote, state.uid, "callee"), [
        send(state, state.remote, Call.Signal.Accept()),
        Instruction.StartTimer({ callId: state.callId, timer: "ring" }),
        Instruction.OpenPeer({ callId: state.callId, remote: state.remote, role: "callee" })
      ])
    }
    case "Reject": {
      if (state._tag !== "IncomingInit") return ignore(state)
      return end(state, input.reason, "local", [
        send(state, state.remote, Call.Signal.Reject({ reason: input.reason }))
      ])
    }
    case "Hangup": {
      if (!isLiveState(state)) return ignore(state)
      const reason = input.reason ?? (state._tag === "OutgoingInit" ? Call.Reason.cancelled : Call.Reason.hangup)
      return end(state, reason, "local", hangupAll(state, reason))
    }
    case "Remote":
      return remote(context, state, input)
    case "PeerOffline": {
      if (!isLiveState(state) || !partiesOf(state).includes(input.address)) return ignore(state)
      if (state._tag === "OutgoingInit") return stopRinging(state, input.address, undefined)
      // An Active call gives the remote a grace period to come back (or to tell us where it went).
      if (state._tag === "Active") {
        if (state.away) return ignore(state)
        return go(CallState.Active({ ...state, away: true }), [
          Instruction.StartTimer({ callId: state.callId, timer: "grace" })
        ])
      }
      return end(state, Call.Reason.offline, "remote")
    }
    case "PeerOnline": {
      if (state._tag !== "Active" || !state.away || state.remote !== input.address) return ignore(state)
      return go(CallState.Active({ ...state, away: false }), [Instruction.StopTimer({ timer: "grace" })])
    }
    case "Reconnected": {
      if (state._tag !== "Active" || state.uid === undefined || input.address === "") return ignore(state)
      const user = Address.parse(state.remote).user
      return go(state, [send(state, user, Call.Signal.Moved())])
    }
    case "Timeout":
      return timeout(state, input.callId, input.timer)
    case "LocalCandidate": {
      if (state.callId !== input.callId) return ignore(state)
      if (state._tag !== "Negotiating" && state._tag !== "Active") return ignore(state)
      return go(state, [send(state, state.remote, Call.Signal.Candidate({ candidate: input.candidate }))])
    }
    case "Connected": {
      if (state.callId !== input.callId) return ignore(state)
      if (state._tag === "Active" && state.disconnected) {
        return go(CallState.Active({ ...state, disconnected: false }), [
          Instruction.StopTimer({ timer: "disconnected" })
        ])
      }
      if (state._tag !== "Negotiating" || !state.remoteDescription) return ignore(state)
      const { callId, remote, role, uid } = state
      return go(CallState.Active({ callId, remote, uid, role, away: false, disconnected: false, offering: false }), [
        Instruction.StopTimer({ timer: "ring" })
      ])
    }
    case "NegotiationNeeded": {
      if (state.callId !== input.callId || state._tag !== "Active" || state.offering) return ignore(state)
      return go(CallState.Active({ ...state, offering: true }), [
        Instruction.SendOffer({ callId: state.callId, remote: state.remote, uid: state.uid })
      ])
    }
    case "Disconnected": {
      if (state.callId !== input.callId || state._tag !== "Active" || state.disconnected) return ignore(state)
      return go(CallState.Active({ ...state, disconnected: true }), [
        Instruction.StartTimer({ callId: state.callId, timer: "disconnected" })
      ])
    }
    case "PeerFailed": {
      if (state.callId !== input.callId) return ignore(state)
      if (state._tag !== "Negotiating" && state._tag !== "Active") return ignore(state)
      return end(state, Call.Reason.failed, "local", hangupAll(state, Call.Reason.failed))
    }
    case "Closed": {
      if (state.callId !== input.callId || state._tag !== "Ending") return ignore(state)
      return go(CallState.Ended({ callId: state.callId, remote: state.remote, reason: state.reason, by: state.by }))
    }
  }
}

const timeout = (state: CallState, callId: number, timer: Timer): Step => {
  if (state.callId !== callId) return ignore(state)
  switch (timer) {
    case "ring":
      // The timer is restarted on accept, so it also bounds negotiation: an accepted call that never connects ends.
      if (state._tag !== "OutgoingInit" && state._tag !== "IncomingInit" && state._tag !== "Negotiating") {
        return ignore(state)
      }
      return end(state, Call.Reason.timeout, "local", hangupAll(state, Call.Reason.timeout))
    case "grace":
      // Gone for good, as far as we can tell: nobody to tell.
      if (state._tag !== "Active" || !state.away) return ignore(state)
      return end(state, Call.Reason.offline, "remote")
    case "disconnected":
      if (state._tag !== "Active" || !state.disconnected) return ignore(state)
      return end(state, Call.Reason.failed, "local", hangupAll(state, Call.Reason.failed))
  }
}

/** A `call:moved` from the remote's user: the remote party of our Active call now speaks from `from`. */
const moved = (context: Context, state: CallState, from: string, uid: string | undefined): Step => {
  if (state._tag !== "Active" || state.uid === undefined || uid !== state.uid || from === context.self) {
    return ignore(state)
  }
  if (Address.parse(from).user !== Address.parse(state.remote).user) return ignore(state)
  if (from === state.remote) {
    if (!state.away) return ignore(state)
    return go(CallState.Active({ ...state, away: false }), [Instruction.StopTimer({ timer: "grace" })])
  }
  // The new address may not know ours either (both sides reconnected): tell it, from where we are now.
  const rebound = CallState.Active({ ...state, remote: from, away: false })
  return go(rebound, [Instruction.StopTimer({ timer: "grace" }), send(rebound, from, Call.Signal.Moved())])
}

const remote = (context: Context, state: CallState, input: Extract<Input, { readonly _tag: "Remote" }>): Step => {
  const { from, signal } = input
  if (signal._tag === "Init") return init(context, state, from, input.uid)
  if (signal._tag === "Moved") return moved(context, state, from, input.uid)
  // Only the parties of the current call may move it; everyone else is ignored, and so is a frame of another call.
  if (!isLiveState(state) || !partiesOf(state).includes(from)) return ignore(state)
  if (input.uid !== undefined && state.uid !== undefined && input.uid !== state.uid) return ignore(state)
  if (state._tag === "OutgoingInit") {
    switch (signal._tag) {
      case "Accept":
        // The first accept wins; every other session still ringing is told the call was answered elsewhere.
        return go(startNegotiating(state.callId, from, state.uid, "caller"), [
          ...hangupAll(state, Call.Reason.answeredElsewhere, from),
          Instruction.StartTimer({ callId: state.callId, timer: "ring" }),
          Instruction.OpenPeer({ callId: state.callId, remote: from, role: "caller" }),
          Instruction.SendOffer({ callId: state.callId, remote: from, uid: state.uid })
        ])
      case "Reject":
      case "Hangup":
        // One device saying no (or giving up ringing) leaves the others ringing.
        return stopRinging(state, from, signal.reason)
      default:
        return ignore(state)
    }
  }
  switch (signal._tag) {
    case "Accept":
    case "Reject":
      return ignore(state)
    case "Hangup":
      return end(state, signal.reason, "remote")
    case "Offer": {
      const answer = (rollback: boolean) =>
        Instruction.AnswerOffer({
          callId: state.callId,
          remote: state.remote,
          uid: state.uid,
          sdp: signal.sdp,
          rollback
        })
      if (state._tag === "Active") {
        if (!state.offering) return go(state, [answer(false)])
        // Glare while renegotiating resolves as for the first offer: the lower address keeps its offer; the other
        // side takes its own back, answers, and offers again.
        if (winsGlare(context.self, state.remote)) return ignore(state)
        return go(state, [
          answer(true),
          Instruction.SendOffer({ callId: state.callId, remote: state.remote, uid: state.uid })
        ])
      }
      if (state._tag !== "Negotiating") return ignore(state)
      // Once the first exchange is done, an offer is a renegotiation the other side started as soon as it connected
      // (before we saw the connection ourselves).
      if (state.remoteDescription) return go(state, [answer(false)])
      if (state.role !== "callee") return ignore(state)
      return go(CallState.Negotiating({ ...state, remoteDescription: true, pending: [] }), [
        answer(false),
        ...flush(state)
      ])
    }
    case "Answer": {
      if (state._tag === "Active") {
        if (!state.offering) return ignore(state)
        return go(CallState.Active({ ...state, offering: false }), [
          Instruction.ApplyAnswer({ callId: state.callId, sdp: signal.sdp })
        ])
      }
      if (state._tag !== "Negotiating" || state.role !== "caller" || state.remoteDescription) return ignore(state)
      return go(CallState.Negotiating({ ...state, remoteDescription: true, pending: [] }), [
        Instruction.ApplyAnswer({ callId: state.callId, sdp: signal.sdp }),
        ...flush(state)
      ])
    }
    case "Candidate": {
      if (state._tag === "Active") {
        return go(state, [Instruction.AddCandidate({ callId: state.callId, candidate: signal.candidate })])
      }
      if (state._tag !== "Negotiating") return ignore(state)
      if (state.remoteDescription) {
        return go(state, [Instruction.AddCandidate({ callId: state.callId, candidate: signal.candidate })])
      }
      return go(CallState.Negotiating({ ...state, pending: [...state.pending, signal.candidate] }))
    }
  }
}

const flush = (state: Extract<CallState, { readonly _tag: "Negotiating" }>): ReadonlyArray<Instruction> =>
  state.pending.map((candidate) => Instruction.AddCandidate({ callId: state.callId, candidate }))

const init = (context: Context, state: CallState, from: string, uid: string | undefined): Step => {
  if (from === context.self) return ignore(state)
  if (!isBusy(state)) {
    const callId = state.callId + 1
    return go(CallState.IncomingInit({ callId, remote: from, uid }), [
      Instruction.Ring({ callId, remote: from }),
      Instruction.StartTimer({ callId, timer: "ring" })
    ])
  }
  if (state._tag === "OutgoingInit" && state.ringing.includes(from)) {
    // Glare: both of us sent init. The lower address keeps its call; the other side answers it as if the user
    // had accepted, since calling that very peer is what its user asked for (and tells its other rings so).
    if (winsGlare(context.self, from)) return ignore(state)
    // We answer their call, so it goes on under their id.
    return go(startNegotiating(state.callId, from, uid, "callee"), [
      Instruction.Send({ to: from, signal: Call.Signal.Accept(), uid }),
      ...hangupAll(state, Call.Reason.answeredElsewhere, from),
      Instruction.StartTimer({ callId: state.callId, timer: "ring" }),
      Instruction.OpenPeer({ callId: state.callId, remote: from, role: "callee" })
    ])
  }
  // A repeated init from the peer we are already ringing with is a duplicate, not a second call.
  if (state._tag === "IncomingInit" && state.remote === from) return ignore(state)
  return go(state, [Instruction.Send({ to: from, signal: Call.Signal.Reject({ reason: Call.Reason.busy }), uid })])
}
