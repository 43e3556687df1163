/**
 * WebRTC call signalling over Symple: `message` frames whose `subtype` is `call:<action>`, addressed to a full
 * `user|id`. Pure data, no I/O.
 *
 * Input is read the way the tolerant reference peers read it: `sdpMLineIndex` may be missing (the C++ peer never
 * sends it), a candidate line may start with `a=` (libdatachannel), and `init` / `accept` may carry `{}`, no `data`
 * at all, or extra keys. Output is always the strict shape both references accept.
 *
 * Extensions (each ignored by the reference peers, which read only the keys they know and drop unknown actions):
 *
 * - `data.callId` in every frame: a random id the caller gives a call in its `call:init`, repeated by both sides in
 *   every frame of that call. A frame of another call is ignored; a frame without one (a reference peer) is taken
 *   as it comes.
 * - `call:candidate {candidate: ""}`: the end-of-candidates marker, sent once our candidates are gathered, with
 *   the `sdpMid` / `sdpMLineIndex` of the last one. A browser's `addIceCandidate` takes it as it is; the C++ peer
 *   ignores a candidate without a line.
 * - `call:moved {callId}`: sent by a party whose address changed during a call (its client reconnected without
 *   resuming its session) to the other party's user (`to` a bare user: the server delivers it to every session of
 *   that user sharing a room). The session holding that call answers from its own address with a `call:moved` of
 *   its own when it changed the address it sends to; both sides then carry on with the new addresses.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Address from "./Address.js"
import type * as Frame from "./Frame.js"
import { isObject, type JsonObject } from "./Json.js"
import * as Message from "./Message.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Action = "init" | "accept" | "reject" | "offer" | "answer" | "candidate" | "hangup" | "moved"

/**
 * @since 0.1.0
 * @category constants
 */
export const actions: ReadonlyArray<Action> = [
  "init",
  "accept",
  "reject",
  "offer",
  "answer",
  "candidate",
  "hangup",
  "moved"
]

/**
 * @since 0.1.0
 * @category constants
 */
export const subtypePrefix = "call:"

/**
 * @since 0.1.0
 * @category conversions
 */
export const subtype = (action: Action): string => `${subtypePrefix}${action}`

/**
 * The action named by a `subtype`, if it is one of the call actions.
 *
 * @since 0.1.0
 * @category conversions
 */
export const actionOf = (subtype: string | undefined): Option.Option<Action> => {
  if (subtype === undefined || !subtype.startsWith(subtypePrefix)) return Option.none()
  const action = subtype.slice(subtypePrefix.length)
  return (actions as ReadonlyArray<string>).includes(action) ? Option.some(action as Action) : Option.none()
}

/**
 * Reasons in `reject` and `hangup`. The references send `declined`, `busy` and `hangup`; any other non-empty string
 * is legal too, and this package also sends:
 *
 * - `timeout`: the call rang (or negotiated) unanswered for too long;
 * - `failed`: the peer connection could not be established, or failed;
 * - `cancelled`: the caller gave up before an answer (to every session still ringing);
 * - `answered-elsewhere`: another session of the same user accepted the call (to the sessions that rang too).
 *
 * `offline` is never sent: it is the reason a call ends with when its remote party went offline.
 *
 * @since 0.1.0
 * @category constants
 */
export const Reason = {
  declined: "declined",
  busy: "busy",
  hangup: "hangup",
  timeout: "timeout",
  failed: "failed",
  offline: "offline",
  cancelled: "cancelled",
  answeredElsewhere: "answered-elsewhere"
} as const

/**
 * An ICE candidate as it travels in `call:candidate`: the `candidate:` line without any `a=` prefix. An empty line
 * is the end-of-candidates marker (no more candidates will come for that media section, or for all when it names
 * none), as `RTCPeerConnection.addIceCandidate` takes it.
 *
 * @since 0.1.0
 * @category models
 */
export interface IceCandidate {
  readonly candidate: string
  readonly sdpMid?: string
  readonly sdpMLineIndex?: number
}

/**
 * A call signal, without its envelope.
 *
 * @since 0.1.0
 * @category models
 */
export type Signal = Data.TaggedEnum<{
  Init: {}
  Accept: {}
  Reject: { readonly reason: string }
  Offer: { readonly sdp: string }
  Answer: { readonly sdp: string }
  Candidate: { readonly candidate: IceCandidate }
  Hangup: { readonly reason: string }
  /** Extension: the sender's address changed during the call (see the module header). */
  Moved: {}
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const Signal = Data.taggedEnum<Signal>()

/**
 * A call signal received from a peer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Incoming {
  /** The sender's full `user|id` address. */
  readonly from: string
  readonly signal: Signal
  /** The `id` of the message that carried it, when it had one. */
  readonly id?: string
  /** Extension: the call's id (`data.callId`), when the sender gave one. */
  readonly callId?: string
}

/**
 * @since 0.1.0
 * @category conversions
 */
export const actionOfSignal = (signal: Signal): Action => {
  switch (signal._tag) {
    case "Init":
      return "init"
    case "Accept":
      return "accept"
    case "Reject":
      return "reject"
    case "Offer":
      return "offer"
    case "Answer":
      return "answer"
    case "Candidate":
      return "candidate"
    case "Hangup":
      return "hangup"
    case "Moved":
      return "moved"
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Strict output schemas
// ---------------------------------------------------------------------------------------------------------------

const NonEmpty = Schema.String.check(Schema.isMinLength(1))

/** The `callId` extension, optional in every action's data but `moved`. */
const callIdField = { callId: Schema.optionalKey(NonEmpty) }

/**
 * `data` of `call:init` and `call:accept` as this package sends it: `{}`, or `{callId}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EmptyData = Schema.Struct(callIdField).annotate({ identifier: "CallEmptyData" })

/**
 * `data` of `call:reject` and `call:hangup`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ReasonData = Schema.Struct({ reason: NonEmpty, ...callIdField }).annotate({
  identifier: "CallReasonData"
})

/**
 * `data` of `call:offer` and `call:answer`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DescriptionData = Schema.Struct({
  type: Schema.Literals(["offer", "answer"]),
  sdp: NonEmpty,
  ...callIdField
}).annotate({ identifier: "CallDescriptionData" })

/**
 * `data` of `call:candidate`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CandidateData = Schema.Struct({
  candidate: Schema.String.check(
    Schema.makeFilter((s) => !s.startsWith("a=") || "a candidate line without the a= prefix")
  ),
  sdpMid: Schema.optionalKey(Schema.String),
  sdpMLineIndex: Schema.optionalKey(Schema.Natural),
  ...callIdField
}).annotate({ identifier: "CallCandidateData" })

/**
 * `data` of the `call:moved` extension.
 *
 * @since 0.2.0
 * @category schemas
 */
export const MovedData = Schema.Struct({ callId: NonEmpty }).annotate({ identifier: "CallMovedData" })

/** `Schema.is` ignores excess keys; the strict shapes refuse them. */
const strictly = <S extends Schema.Codec<unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownExit(Schema.toType(schema), { onExcessProperty: "error" })
  return (u: unknown): u is S["Type"] => Exit.isSuccess(decode(u))
}
const validators = {
  empty: strictly(EmptyData),
  reason: strictly(ReasonData),
  description: strictly(DescriptionData),
  candidate: strictly(CandidateData),
  moved: strictly(MovedData)
}

/**
 * Whether `data` is exactly the strict shape of an action's payload (no extra keys, `type` matching the action).
 *
 * @since 0.1.0
 * @category guards
 */
export const isStrictData = (action: Action, data: unknown): boolean => {
  switch (action) {
    case "init":
    case "accept":
      return validators.empty(data)
    case "reject":
    case "hangup":
      return validators.reason(data)
    case "offer":
    case "answer":
      return validators.description(data) && data.type === action
    case "candidate":
      return validators.candidate(data)
    case "moved":
      return validators.moved(data)
  }
}

const defaultReason = (action: "reject" | "hangup"): string => action === "reject" ? Reason.declined : Reason.hangup

/**
 * Removes a leading `a=` (libdatachannel writes candidates as SDP attribute lines).
 *
 * @since 0.1.0
 * @category conversions
 */
export const stripAttributePrefix = (line: string): string => line.startsWith("a=") ? line.slice(2) : line

/**
 * Whether a candidate is the end-of-candidates marker (an empty line).
 *
 * @since 0.2.0
 * @category guards
 */
export const isEndOfCandidates = (candidate: IceCandidate): boolean => candidate.candidate === ""

/**
 * Normalises a candidate from any source (a wire frame, a browser's `RTCIceCandidate`, werift's) to the strict
 * wire shape: an empty line is the end-of-candidates marker; none when there is no candidate string, or only an
 * `a=` prefix.
 *
 * @since 0.1.0
 * @category constructors
 */
export const iceCandidate = (input: {
  readonly candidate?: unknown
  readonly sdpMid?: unknown
  readonly sdpMLineIndex?: unknown
}): Option.Option<IceCandidate> => {
  if (typeof input.candidate !== "string") return Option.none()
  const trimmed = input.candidate.trim()
  const line = stripAttributePrefix(trimmed)
  if (line === "" && trimmed !== "") return Option.none()
  const index = input.sdpMLineIndex
  return Option.some({
    candidate: line,
    ...(typeof input.sdpMid === "string" ? { sdpMid: input.sdpMid } : {}),
    ...(typeof index === "number" && Number.isInteger(index) && index >= 0 ? { sdpMLineIndex: index } : {})
  })
}

/**
 * The wire `data` of a signal, in the strict shape, with the call's id when given.
 *
 * @since 0.1.0
 * @category encoding
 */
export const data = (signal: Signal, callId?: string): JsonObject => {
  const payload = signalData(signal)
  return callId === undefined || callId === "" ? payload : { ...payload, callId }
}

const signalData = (signal: Signal): JsonObject => {
  switch (signal._tag) {
    case "Init":
    case "Accept":
    case "Moved":
      return {}
    case "Reject":
      return { reason: signal.reason === "" ? Reason.declined : signal.reason }
    case "Hangup":
      return { reason: signal.reason === "" ? Reason.hangup : signal.reason }
    case "Offer":
      return { type: "offer", sdp: signal.sdp }
    case "Answer":
      return { type: "answer", sdp: signal.sdp }
    case "Candidate": {
      const c = signal.candidate
      return {
        candidate: stripAttributePrefix(c.candidate),
        ...(c.sdpMid !== undefined ? { sdpMid: c.sdpMid } : {}),
        ...(c.sdpMLineIndex !== undefined ? { sdpMLineIndex: c.sdpMLineIndex } : {})
      }
    }
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface MessageOptions {
  /** The call's id, sent as `data.callId` (an extension the reference peers ignore). */
  readonly callId?: string | undefined
}

/**
 * The `message` frame that carries a signal to `to` (a full `user|id` address, or a user for `moved`; the sending
 * client sets `from`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const message = (to: string, signal: Signal, options: MessageOptions = {}): Frame.Message =>
  Message.message({ to, subtype: subtype(actionOfSignal(signal)), data: data(signal, options.callId) })

const isRecipient = (action: Action, to: string): boolean => {
  const address = Address.parse(to)
  return Address.isFull(address) || (action === "moved" && address.user !== "" && !Address.hasSeparator(to))
}

/**
 * Checks a frame built elsewhere against the strict output rules: a call subtype, a full `to` address (a user for
 * `moved`) and the strict `data` of its action.
 *
 * @since 0.1.0
 * @category guards
 */
export const isStrict = (frame: Frame.Message): boolean =>
  Option.match(actionOf(frame.subtype), {
    onNone: () => false,
    onSome: (action) =>
      typeof frame.to === "string" && isRecipient(action, frame.to) && isStrictData(action, frame.data)
  })

// ---------------------------------------------------------------------------------------------------------------
// Tolerant input
// ---------------------------------------------------------------------------------------------------------------

const reasonOf = (raw: unknown, action: "reject" | "hangup"): string => {
  const reason = isObject(raw) ? raw.reason : undefined
  return typeof reason === "string" && reason !== "" ? reason : defaultReason(action)
}

const sdpOf = (raw: unknown, type: "offer" | "answer"): Option.Option<string> => {
  if (!isObject(raw)) return Option.none()
  // The type travels twice (subtype and data.type); a disagreement means the frame cannot be trusted.
  if (raw.type !== type) return Option.none()
  return typeof raw.sdp === "string" && raw.sdp !== "" ? Option.some(raw.sdp) : Option.none()
}

/**
 * The signal carried by a `data` value for an action, or none when the data is unusable (no SDP, no candidate).
 *
 * @since 0.1.0
 * @category decoding
 */
export const signalOf = (action: Action, raw: unknown): Option.Option<Signal> => {
  switch (action) {
    case "init":
      return Option.some(Signal.Init())
    case "accept":
      return Option.some(Signal.Accept())
    case "reject":
      return Option.some(Signal.Reject({ reason: reasonOf(raw, action) }))
    case "hangup":
      return Option.some(Signal.Hangup({ reason: reasonOf(raw, action) }))
    case "offer":
      return Option.map(sdpOf(raw, "offer"), (sdp) => Signal.Offer({ sdp }))
    case "answer":
      return Option.map(sdpOf(raw, "answer"), (sdp) => Signal.Answer({ sdp }))
    case "candidate":
      if (!isObject(raw)) return Option.none()
      return Option.map(iceCandidate(raw), (candidate) => Signal.Candidate({ candidate }))
    case "moved":
      // Without the call's id nobody could tell which call moved.
      return Option.isSome(callIdOf(raw)) ? Option.some(Signal.Moved()) : Option.none()
  }
}

/**
 * The `callId` extension of a frame's `data`, when it has a usable one.
 *
 * @since 0.2.0
 * @category decoding
 */
export const callIdOf = (raw: unknown): Option.Option<string> => {
  const id = isObject(raw) ? raw.callId : undefined
  return typeof id === "string" && id !== "" ? Option.some(id) : Option.none()
}

/**
 * Reads a call signal from a `message` frame: none when it is not a call frame, when `from` is not a full address,
 * or when the payload is unusable. Never throws.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parse = (frame: Frame.Message): Option.Option<Incoming> => {
  const from = frame.from
  if (typeof from !== "string" || !Address.isFull(Address.parse(from))) return Option.none()
  const callId = callIdOf(frame.data)
  return actionOf(frame.subtype).pipe(
    Option.flatMap((action) => signalOf(action, frame.data)),
    Option.map((signal): Incoming => ({
      from,
      signal,
      ...(frame.id === undefined ? {} : { id: frame.id }),
      ...(Option.isSome(callId) ? { callId: callId.value } : {})
    }))
  )
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isCallMessage = (frame: Frame.Frame): frame is Frame.Message =>
  frame.type === "message" && Option.isSome(actionOf(frame.subtype))
