/**
 * The vocabulary of the client's transition machine: its state, its inputs (the client's API calls, what its socket
 * reports, its timers, its reconnection schedule), its commands (what the interpreter, `./Client.ts`, does in
 * order: open, write or close a socket, start or cancel a timer, run the reconnection schedule, answer an API call,
 * publish), and what must hold between any two inputs. The rules are `./Transition.ts`.
 *
 * The parts of the state: `Session` (the connection's life, resume), `Outbox` (frames waiting to be written),
 * `Transactions` (requests and room changes waiting for answers), `RosterState` (peers, kept through
 * reconnections).
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import type * as Frame from "../../protocol/Frame.js"
import type * as ClientConfig from "../ClientConfig.js"
import type { ClientClosed, ConnectionLost, RequestError } from "../ClientError.js"
import { ClientState } from "../ClientState.js"
import type * as Roster from "../Roster.js"
import * as Outbox from "./Outbox.js"
import * as RosterState from "./RosterState.js"
import { type Conn, Phase } from "./Session.js"
import * as Transactions from "./Transactions.js"

type Ticket = Outbox.Ticket

/**
 * What the client does is decided by its options.
 *
 * @since 0.2.0
 * @category models
 */
export interface Context {
  readonly config: ClientConfig.ResolvedConfig
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Route {
  readonly route: number
  readonly pattern: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface State {
  readonly phase: Phase
  /** The last connection opened. */
  readonly conns: Conn
  /** The rooms the client asks for on every connection. */
  readonly desired: ReadonlyArray<string>
  /** The rooms this session is in; empty while offline. */
  readonly rooms: ReadonlyArray<string>
  /** The resume token of the last `welcome`, offered by the next `auth`. */
  readonly resume: string | undefined
  /** The state last published. */
  readonly shown: ClientState
  readonly outbox: Outbox.Outbox
  readonly tx: Transactions.Transactions
  readonly roster: RosterState.RosterState
  /** Tells the grace timer in force from earlier ones. */
  readonly grace: number
  readonly routes: ReadonlyArray<Route>
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const initial = (context: Context): State => ({
  phase: Phase.Idle(),
  conns: 0,
  desired: context.config.rooms,
  rooms: [],
  resume: undefined,
  shown: ClientState.Closed(),
  outbox: Outbox.empty,
  tx: Transactions.empty,
  roster: RosterState.empty,
  grace: 0,
  routes: []
})

/**
 * @since 0.2.0
 * @category models
 */
export type Timer = Data.TaggedEnum<{
  /** The server must answer `auth` within `openTimeout`. */
  Handshake: { readonly conn: Conn }
  /** A request's timeout. */
  Request: { readonly ticket: Ticket }
  /** A room change's timeout (`requestTimeout`). */
  Room: { readonly ticket: Ticket }
  /** The end of the roster's grace period. */
  Grace: { readonly grace: number }
}>

/**
 * @since 0.2.0
 * @category constructors
 */
export const Timer = Data.taggedEnum<Timer>()

/**
 * One timer of each key runs at a time; starting it again replaces it.
 *
 * @since 0.2.0
 * @category getters
 */
export const timerKey = (timer: Timer): string => {
  switch (timer._tag) {
    case "Handshake":
      return "handshake"
    case "Request":
      return `request:${timer.ticket}`
    case "Room":
      return `room:${timer.ticket}`
    case "Grace":
      return "grace"
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export type Input = Data.TaggedEnum<{
  /** The client starts connecting. */
  Start: {}
  /** API: write a frame; answered once it is written. */
  Send: { readonly ticket: Ticket; readonly payload: Outbox.Payload }
  /** API: a request (`frame` has an `id` and no `status`); answered by the final reply or the timeout. */
  Request: { readonly ticket: Ticket; readonly frame: Frame.Routed; readonly timeout: Duration.Duration }
  /** API: change the desired rooms; answered by the server's acknowledgement (at once while offline). */
  Room: { readonly ticket: Ticket; readonly change: "join" | "leave"; readonly room: string }
  /** API: the caller stopped waiting (it was interrupted): forget the ticket, and its frame if unwritten. */
  Withdraw: { readonly ticket: Ticket }
  /** API: command requests matching `pattern` go to this route. */
  AddRoute: Route
  RemoveRoute: { readonly route: number }
  /** API: close the client. */
  Close: { readonly ticket: Ticket }
  /** The socket of `conn` is open. */
  Opened: { readonly conn: Conn }
  /** A frame from the socket of `conn`, as received. */
  Received: { readonly conn: Conn; readonly data: string | Uint8Array }
  /** The outcome of a `Deliver`: written, refused (the socket is closing), or it could not be encoded. */
  Written: { readonly ticket: Ticket; readonly outcome: "written" | "refused" | { readonly defect: unknown } }
  /** The socket of `conn` closed (or never opened). `overLimit`: the socket itself refused a frame too large. */
  Closed: {
    readonly conn: Conn
    readonly code: number | undefined
    readonly cause: unknown
    readonly overLimit: boolean
  }
  Timeout: { readonly timer: Timer }
  /** The reconnection schedule's delay is over. */
  Retry: {}
  /** The reconnection schedule is over. */
  GiveUp: {}
}>

/**
 * @since 0.2.0
 * @category constructors
 */
export const Input = Data.taggedEnum<Input>()

/**
 * @since 0.2.0
 * @category models
 */
export type Command = Data.TaggedEnum<{
  /** Open a socket for connection `conn`; report `Opened`, every `Received` frame, then `Closed`. */
  Open: { readonly conn: Conn }
  /** Write a frame on `conn` if its socket is open; nothing waits for it. */
  Write: { readonly conn: Conn; readonly frame: Frame.Frame }
  /** Write the outbox's head on `conn`, and report `Written` before taking any other input. */
  Deliver: { readonly conn: Conn; readonly ticket: Ticket; readonly frame: Frame.Frame }
  CloseSocket: { readonly conn: Conn; readonly code: number }
  StartTimer: { readonly timer: Timer; readonly after: Duration.Duration }
  CancelTimer: { readonly timer: Timer }
  /** Ask the reconnection schedule for its delay after `lost` (a fresh schedule when `restart`); then `Retry` or
   * `GiveUp`. */
  Backoff: { readonly lost: ConnectionLost; readonly restart: boolean }
  Answer: {
    readonly ticket: Ticket
    readonly exit: Exit.Exit<Frame.Frame | void, ClientClosed | RequestError>
  }
  /** A request got a reply that is not final (202, 406). */
  Progress: { readonly ticket: Ticket; readonly reply: Frame.Routed }
  RunRoute: { readonly route: number; readonly command: Frame.Command }
  ShowState: { readonly state: ClientState }
  ShowRooms: { readonly rooms: ReadonlyArray<string> }
  /** The roster now holds `peers` (`pending` of them held from before a reconnection); `changes` led there. */
  ShowRoster: {
    readonly peers: Roster.Peers
    readonly pending: ReadonlyArray<string>
    readonly changes: ReadonlyArray<Roster.Change>
  }
  Announce: { readonly status: number; readonly message: string }
  /** A frame for the application (`frames`, `messages`, ...). */
  Inbound: { readonly frame: Frame.Frame }
  /** The client stopped: from now on everything fails with `error`. */
  Stop: { readonly error: ClientClosed }
}>

/**
 * @since 0.2.0
 * @category constructors
 */
export const Command = Data.taggedEnum<Command>()

/**
 * @since 0.2.0
 * @category models
 */
export interface Step {
  readonly state: State
  readonly commands: ReadonlyArray<Command>
}

// --- invariants -----------------------------------------------------------------------------------------------

/**
 * What must hold between any two inputs. Returns the first violation (the property tests check every state).
 *
 * @since 0.2.0
 * @category invariants
 */
export const violation = (state: State): string | undefined => {
  const roster = RosterState.violation(state.roster)
  if (roster !== undefined) return roster
  const { outbox, phase, shown, tx } = state
  const tickets = outbox.items.map((item) => item.ticket)
  if (new Set(tickets).size !== tickets.length) return "a ticket is twice in the outbox"
  if (outbox.writing !== undefined) return "a write is unconfirmed between two inputs"
  for (const item of outbox.items) {
    if (!item.answers && !tx.ids.has(item.ticket)) return `request ${item.ticket} waits for no reply`
  }
  if (phase._tag !== "Online") {
    if (state.rooms.length > 0) return "rooms while offline"
    if (tx.rooms.size > 0) return "room changes waiting while offline"
  }
  switch (phase._tag) {
    case "Idle":
      return shown._tag === "Closed" && state.conns === 0 ? undefined : "idle after starting"
    case "Connecting":
      return shown._tag === "Connecting" && shown.attempt === phase.attempt ? undefined : "Connecting not shown"
    case "Authenticating":
      return shown._tag === "Authenticating" && shown.attempt === phase.attempt ? undefined : "Authenticating not shown"
    case "Online":
      if (shown._tag !== "Online" || shown.peer !== phase.self) return "Online not shown"
      if (state.roster.self !== phase.self.id) return "our own entry is not this session"
      if (state.roster.pending.has(phase.self.id)) return "our own entry is pending"
      return undefined
    case "Waiting":
      if (shown._tag === "Error" && !shown.retrying) return "waiting to retry, shown as final"
      return shown._tag === "Closed" || shown._tag === "Error" ? undefined : "Waiting shown as connected"
    case "Stopped":
      if (outbox.items.length > 0 || Transactions.tickets(tx).length > 0) return "stopped with calls waiting"
      if (HashMap.size(state.roster.peers) > 0) return "stopped with a roster"
      if (shown._tag === "Error" && shown.retrying) return "stopped, shown as retrying"
      return shown._tag === "Closed" || shown._tag === "Error" ? undefined : "Stopped shown as connected"
  }
}
