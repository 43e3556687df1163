/**
 * The client as a pure transition: `(context, state, input) -> (state, commands)` (the vocabulary is
 * `./Machine.ts`). The interpreter (`./Client.ts`) runs it one input at a time, so the whole client is a value
 * between two inputs, and the tests can throw arbitrary sequences of inputs at it.
 *
 * Writes of frames that someone waits for (`Deliver`) report back (`Written`) before any other input is taken: a
 * socket can start closing at any moment, and a frame counts as sent only once a write succeeded.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Address from "../../protocol/Address.js"
import * as Frame from "../../protocol/Frame.js"
import * as Message from "../../protocol/Message.js"
import * as Peer from "../../protocol/Peer.js"
import * as ClientConfig from "../ClientConfig.js"
import { type AuthRefused, ClientClosed, type ConnectionLost, type RequestError } from "../ClientError.js"
import { ClientState } from "../ClientState.js"
import * as Roster from "../Roster.js"
import { Command, type Context, type Input, type State, type Step, Timer } from "./Machine.js"
import * as Outbox from "./Outbox.js"
import * as RosterState from "./RosterState.js"
import { type Conn, Phase, Verdict } from "./Session.js"
import * as Session from "./Session.js"
import * as Transactions from "./Transactions.js"

type Ticket = Outbox.Ticket

const closeFrame: Frame.Close = { type: "close" }

/**
 * The transition function. Total: every input is accepted in every state; inputs about another connection,
 * tickets already answered and timers replaced since are stale and change nothing.
 *
 * @since 0.2.0
 * @category transitions
 */
export const transition = (context: Context, state: State, input: Input): Step => {
  const out: Array<Command> = []
  const next = step(context, state, input, out)
  return { state: next, commands: out }
}

type Out = Array<Command>

const show = (state: State, shown: ClientState, out: Out): State => {
  out.push(Command.ShowState({ state: shown }))
  return { ...state, shown }
}

const answer = (out: Out, ticket: Ticket, exit: Exit.Exit<Frame.Frame | void, ClientClosed | RequestError>) => {
  out.push(Command.Answer({ ticket, exit }))
}

const answerAll = (out: Out, answers: ReadonlyArray<Transactions.Answer>) => {
  for (const [ticket, exit] of answers) answer(out, ticket, exit)
}

const showRoster = (state: State, roster: RosterState.RosterState, changes: ReadonlyArray<Roster.Change>, out: Out) => {
  if (roster === state.roster) return state
  out.push(Command.ShowRoster({ peers: roster.peers, pending: Array.from(roster.pending.keys()), changes }))
  return { ...state, roster }
}

const stopped = (state: State): ClientClosed | undefined =>
  state.phase._tag === "Stopped" ? state.phase.error : undefined

const step = (context: Context, state: State, input: Input, out: Out): State => {
  const { config } = context
  switch (input._tag) {
    case "Start":
      return state.phase._tag === "Idle" ? connect(state, 1, out) : state
    case "Send": {
      const error = stopped(state)
      if (error !== undefined) {
        answer(out, input.ticket, Exit.fail(error))
        return state
      }
      const outbox = Outbox.push(state.outbox, { ticket: input.ticket, payload: input.payload, answers: true })
      return pump(context, { ...state, outbox }, out)
    }
    case "Request": {
      const error = stopped(state)
      if (error !== undefined) {
        answer(out, input.ticket, Exit.fail(error))
        return state
      }
      const id = input.frame.id ?? ""
      out.push(Command.StartTimer({ timer: Timer.Request({ ticket: input.ticket }), after: input.timeout }))
      const outbox = Outbox.push(state.outbox, {
        ticket: input.ticket,
        payload: Outbox.Payload.Routed({ frame: input.frame }),
        answers: false
      })
      return pump(context, { ...state, outbox, tx: Transactions.open(state.tx, id, input.ticket) }, out)
    }
    case "Room":
      return roomChange(context, state, input.ticket, input.change, input.room, out)
    case "Withdraw": {
      const ticket = input.ticket
      if (state.tx.ids.has(ticket)) out.push(Command.CancelTimer({ timer: Timer.Request({ ticket }) }))
      if (state.tx.keys.has(ticket)) out.push(Command.CancelTimer({ timer: Timer.Room({ ticket }) }))
      const [tx] = Transactions.expire(state.tx, ticket)
      return { ...state, tx, outbox: Outbox.withdraw(state.outbox, ticket) }
    }
    case "AddRoute":
      return { ...state, routes: [...state.routes, { route: input.route, pattern: input.pattern }] }
    case "RemoveRoute":
      return { ...state, routes: state.routes.filter((r) => r.route !== input.route) }
    case "Close":
      return close(state, input.ticket, out)
    case "Opened": {
      const phase = state.phase
      if (phase._tag !== "Connecting" || phase.conn !== input.conn) return state
      out.push(Command.Write({ conn: phase.conn, frame: ClientConfig.authFrame(config, state.desired, state.resume) }))
      out.push(Command.StartTimer({ timer: Timer.Handshake({ conn: phase.conn }), after: config.openTimeout }))
      const next = {
        ...state,
        phase: Phase.Authenticating({ conn: phase.conn, attempt: phase.attempt, verdict: undefined })
      }
      return show(next, ClientState.Authenticating({ attempt: phase.attempt }), out)
    }
    case "Received":
      return received(context, state, input.conn, input.data, out)
    case "Written":
      return written(context, state, input.ticket, input.outcome, out)
    case "Closed":
      return closed(context, state, input, out)
    case "Timeout":
      return timeout(context, state, input.timer, out)
    case "Retry":
      return state.phase._tag === "Waiting" ? connect(state, state.phase.attempt + 1, out) : state
    case "GiveUp": {
      const phase = state.phase
      if (phase._tag !== "Waiting") return state
      return stop(
        state,
        new ClientClosed({ reason: "GaveUp", cause: phase.lost }),
        ClientState.Error({ message: phase.lost.message, status: phase.lost.status, retrying: false }),
        out
      )
    }
  }
}

// --- the connection -------------------------------------------------------------------------------------------

const connect = (state: State, attempt: number, out: Out): State => {
  const conn = state.conns + 1
  out.push(Command.Open({ conn }))
  return show(
    { ...state, conns: conn, phase: Phase.Connecting({ conn, attempt }) },
    ClientState.Connecting({ attempt }),
    out
  )
}

const withVerdict = (state: State, verdict: Verdict): State => {
  const phase = state.phase
  if (phase._tag === "Authenticating") return { ...state, phase: { ...phase, verdict } }
  if (phase._tag === "Online") return { ...state, phase: { ...phase, verdict } }
  return state
}

const received = (context: Context, state: State, conn: Conn, data: string | Uint8Array, out: Out): State => {
  const phase = state.phase
  if ((phase._tag !== "Authenticating" && phase._tag !== "Online") || phase.conn !== conn) return state
  // Once the connection is condemned, what else it brings is not read.
  if (phase.verdict !== undefined && phase.verdict._tag !== "Shutdown") return state
  const limit = context.config.maxFrameSize
  if (limit > 0) {
    const bytes = Session.frameSize(data, limit)
    if (bytes > limit) {
      out.push(Command.CloseSocket({ conn, code: 1009 }))
      return withVerdict(state, Verdict.TooLarge({ bytes }))
    }
  }
  const parsed = Frame.parse(data)
  if (Result.isFailure(parsed)) return state
  const frame = Frame.decodeParsed(parsed.success)
  if (Result.isFailure(frame)) return state
  if (phase._tag === "Authenticating") return handshake(context, state, phase, frame.success, parsed.success, out)
  return online(context, state, phase, frame.success, out)
}

const handshake = (
  context: Context,
  state: State,
  phase: Extract<Phase, { readonly _tag: "Authenticating" }>,
  frame: Frame.Frame,
  parsed: unknown,
  out: Out
): State => {
  if (phase.verdict !== undefined) return state
  if (frame.type === "welcome") {
    if (frame.status === 200 && frame.peer.id !== "") return welcome(context, state, phase, frame, parsed, out)
    out.push(Command.Announce({ status: frame.status, message: "Invalid welcome" }))
    out.push(Command.CloseSocket({ conn: phase.conn, code: 1000 }))
    return withVerdict(state, Verdict.Rejected({ status: frame.status, message: "Invalid welcome" }))
  }
  if (frame.type === "error") {
    const status = frame.status ?? 500
    const message = frame.message ?? "Unknown error"
    out.push(Command.Announce({ status, message }))
    out.push(Command.CloseSocket({ conn: phase.conn, code: 1000 }))
    const verdict = status === 401 || status === 403
      ? Verdict.Refused({ status, message })
      : Verdict.Rejected({ status, message })
    return withVerdict(state, verdict)
  }
  return state
}

const welcome = (
  context: Context,
  state: State,
  phase: Extract<Phase, { readonly _tag: "Authenticating" }>,
  frame: Frame.Welcome,
  parsed: unknown,
  out: Out
): State => {
  const { config } = context
  const conn = phase.conn
  const self = Session.sanitiseSelf(frame.peer)
  const extension = Session.resumeFields(parsed)
  // Only the same session id is the same session, whatever the server says.
  const resumed = extension.resumed && state.roster.self === self.id
  out.push(Command.CancelTimer({ timer: Timer.Handshake({ conn }) }))
  // The session's own frames go first: the joins of desired rooms the welcome left out, then the presence probe
  // (a resumed session knows its roster already). What the publications below wake must come after them.
  for (const room of state.desired) {
    if (!frame.rooms.includes(room)) out.push(Command.Write({ conn, frame: { type: "join", room } }))
  }
  if (!resumed) {
    out.push(Command.Write({ conn, frame: Outbox.presence(self, config.createPresence, { probe: true }) }))
  }
  const [roster, changes] = RosterState.welcome(state.roster, self, resumed)
  let next: State = showRoster(state, roster, changes, out)
  next = armGrace(context, next, out)
  out.push(Command.ShowRooms({ rooms: frame.rooms }))
  out.push(Command.Announce({ status: 200, message: "Welcome" }))
  next = {
    ...next,
    rooms: frame.rooms,
    resume: extension.token,
    phase: Phase.Online({ conn, self, welcome: frame, writable: true, verdict: undefined })
  }
  next = show(next, ClientState.Online({ peer: self }), out)
  return pump(context, next, out)
}

/** Pending peers have the grace period to be seen again; a timer from an earlier period no longer counts. */
const armGrace = (context: Context, state: State, out: Out): State => {
  if (state.roster.pending.size === 0) return state
  const grace = state.grace + 1
  out.push(Command.StartTimer({ timer: Timer.Grace({ grace }), after: context.config.rosterGracePeriod }))
  return { ...state, grace }
}

const online = (
  context: Context,
  state: State,
  phase: Extract<Phase, { readonly _tag: "Online" }>,
  frame: Frame.Frame,
  out: Out
): State => {
  let next = state
  switch (frame.type) {
    case "presence": {
      const peer = Roster.peerOf(frame.data)
      if (peer._tag === "Some") {
        const [roster, changes] = RosterState.presence(state.roster, peer.value)
        next = showRoster(next, roster, changes, out)
      }
      const me = Peer.address(phase.self)
      if (
        frame.probe === true && typeof frame.from === "string" && Address.isFull(Address.parse(frame.from)) &&
        frame.from !== me
      ) {
        const answer = Outbox.presence(phase.self, context.config.createPresence, { to: frame.from })
        out.push(Command.Write({ conn: phase.conn, frame: answer }))
      }
      break
    }
    case "message":
      next = settle(next, frame, out)
      break
    case "command": {
      if (frame.node === undefined) return state
      next = settle(next, frame, out)
      const route = next.routes.find((r) => Message.matches(r.pattern, frame.node!))
      if (route !== undefined) {
        out.push(Command.RunRoute({ route: route.route, command: frame }))
      } else if (context.config.answerUnhandledCommands && Message.isRequest(frame)) {
        const reply = Message.respond(frame, { status: 404 }, Peer.address(phase.self))
        out.push(Command.Write({ conn: phase.conn, frame: reply }))
      }
      break
    }
    case "event":
      if (Session.isShutdownNotice(frame) && phase.verdict === undefined) {
        next = withVerdict(next, Verdict.Shutdown())
      }
      if (frame.name === undefined) return next
      next = settle(next, frame, out)
      break
    case "join:ok": {
      const rooms = next.rooms.includes(frame.room) ? next.rooms : [...next.rooms, frame.room]
      out.push(Command.ShowRooms({ rooms }))
      const [tx, answers] = Transactions.acknowledge(next.tx, `join:${frame.room}`)
      next = settleRooms({ ...next, rooms, tx }, answers, out)
      break
    }
    case "leave:ok": {
      const rooms = next.rooms.filter((r) => r !== frame.room)
      out.push(Command.ShowRooms({ rooms }))
      const [tx, answers] = Transactions.acknowledge(next.tx, `leave:${frame.room}`)
      next = settleRooms({ ...next, rooms, tx }, answers, out)
      break
    }
    case "error": {
      const [tx, answers, dropped] = Transactions.refuse(next.tx, frame)
      next = settleRooms({ ...next, tx, desired: next.desired.filter((r) => !dropped.includes(r)) }, answers, out)
      break
    }
    default:
      return state
  }
  out.push(Command.Inbound({ frame }))
  return next
}

const settle = (state: State, frame: Frame.Routed, out: Out): State => {
  const { answers, progress, tx } = Transactions.settle(state.tx, frame, (ticket) => Outbox.holds(state.outbox, ticket))
  for (const ticket of progress) out.push(Command.Progress({ ticket, reply: frame }))
  for (const [ticket] of answers) out.push(Command.CancelTimer({ timer: Timer.Request({ ticket }) }))
  answerAll(out, answers)
  return tx === state.tx ? state : { ...state, tx }
}

const settleRooms = (state: State, answers: ReadonlyArray<Transactions.Answer>, out: Out): State => {
  for (const [ticket] of answers) out.push(Command.CancelTimer({ timer: Timer.Room({ ticket }) }))
  answerAll(out, answers)
  return state
}

const roomChange = (
  context: Context,
  state: State,
  ticket: Ticket,
  change: "join" | "leave",
  room: string,
  out: Out
): State => {
  const error = stopped(state)
  if (error !== undefined) {
    answer(out, ticket, Exit.fail(error))
    return state
  }
  const desired = change === "join"
    ? (state.desired.includes(room) ? state.desired : [...state.desired, room])
    : state.desired.filter((r) => r !== room)
  const phase = state.phase
  // Offline, the desired rooms are enough: they are applied on the next welcome.
  if (phase._tag !== "Online" || !phase.writable) {
    answer(out, ticket, Exit.void)
    return { ...state, desired }
  }
  out.push(Command.Write({ conn: phase.conn, frame: { type: change, room } }))
  out.push(Command.StartTimer({ timer: Timer.Room({ ticket }), after: context.config.requestTimeout }))
  return { ...state, desired, tx: Transactions.awaitRoom(state.tx, `${change}:${room}`, ticket) }
}

// --- the outbox -----------------------------------------------------------------------------------------------

/** Hands the outbox's head to the socket, when online and nothing is being written. */
const pump = (context: Context, state: State, out: Out): State => {
  const phase = state.phase
  if (phase._tag !== "Online" || !phase.writable) return state
  const item = Outbox.next(state.outbox)
  if (item === undefined) return state
  const frame = Outbox.render(item.payload, phase.self, context.config.createPresence)
  out.push(Command.Deliver({ conn: phase.conn, ticket: item.ticket, frame }))
  return { ...state, outbox: Outbox.begin(state.outbox, item.ticket, frame) }
}

const written = (
  context: Context,
  state: State,
  ticket: Ticket,
  outcome: "written" | "refused" | { readonly defect: unknown },
  out: Out
): State => {
  if (state.outbox.writing?.ticket !== ticket) return state
  if (outcome === "refused") {
    // The socket is closing: the frame waits for the next session.
    const phase = state.phase
    const next = { ...state, outbox: Outbox.refused(state.outbox) }
    return phase._tag === "Online" ? { ...next, phase: { ...phase, writable: false } } : next
  }
  const [outbox, done] = Outbox.written(state.outbox, ticket)
  if (done === undefined) return state
  let next: State = { ...state, outbox }
  if (outcome !== "written") {
    // Not encodable: this frame can never be written. Its request, if any, fails the same way.
    const [tx] = Transactions.expire(next.tx, ticket)
    if (tx !== next.tx) out.push(Command.CancelTimer({ timer: Timer.Request({ ticket }) }))
    next = { ...next, tx }
    answer(out, ticket, Exit.die(outcome.defect))
  } else if (done.item.answers) {
    answer(out, ticket, Exit.succeed(done.frame))
  }
  return pump(context, next, out)
}

// --- the end of a connection ----------------------------------------------------------------------------------

/** The session is over: the roster is kept pending (or emptied), rooms emptied, room changes left to the desired
 * rooms, and a grace timer from an earlier reconnection no longer counts. */
const leaveOnline = (context: Context, state: State, out: Out): State => {
  const keep = Duration.toMillis(context.config.rosterGracePeriod) > 0
  const [roster, changes] = RosterState.lose(state.roster, keep)
  let next = showRoster(state, roster, changes, out)
  out.push(Command.ShowRooms({ rooms: [] }))
  const [tx, answers] = Transactions.releaseRooms(next.tx)
  next = settleRooms({ ...next, tx, rooms: [], grace: next.grace + 1 }, answers, out)
  return { ...next, outbox: Outbox.refused(next.outbox) }
}

const closed = (
  context: Context,
  state: State,
  input: Extract<Input, { readonly _tag: "Closed" }>,
  out: Out
): State => {
  const phase = state.phase
  if (Session.connOf(phase) !== input.conn) return state
  const { config } = context
  const ended: ConnectionLost | AuthRefused = Session.ending(phase, input, config.maxFrameSize)
  out.push(Command.CancelTimer({ timer: Timer.Handshake({ conn: input.conn }) }))
  let next = phase._tag === "Online" ? leaveOnline(context, state, out) : state
  // A clean end is never resumed.
  if (ended._tag === "ConnectionLost" && ended.reason === "Shutdown") next = { ...next, resume: undefined }
  if (ended._tag === "AuthRefused") {
    return stop(
      next,
      new ClientClosed({ reason: "AuthRefused", cause: ended }),
      ClientState.Error({ message: ended.message, status: ended.status, retrying: false }),
      out
    )
  }
  if (!config.reconnection) {
    return stop(
      next,
      new ClientClosed({ reason: "Disconnected", cause: ended }),
      Session.offlineState(ended, false),
      out
    )
  }
  // Attempts are counted since the client was last online.
  const attempt = phase._tag === "Connecting" || phase._tag === "Authenticating" ? phase.attempt : 0
  next = show({ ...next, phase: Phase.Waiting({ attempt, lost: ended }) }, Session.offlineState(ended, true), out)
  out.push(Command.Backoff({ lost: ended, restart: ended.wasOnline }))
  return next
}

const timeout = (context: Context, state: State, timer: Timer, out: Out): State => {
  switch (timer._tag) {
    case "Handshake": {
      const phase = state.phase
      if (phase._tag !== "Authenticating" || phase.conn !== timer.conn || phase.verdict !== undefined) return state
      // A server that accepts the socket but never answers `auth` must not hold the client forever.
      out.push(Command.CloseSocket({ conn: phase.conn, code: 1000 }))
      return withVerdict(state, Verdict.Rejected({ status: 408, message: "No welcome in time" }))
    }
    case "Request":
    case "Room": {
      const [tx, expired] = Transactions.expire(state.tx, timer.ticket)
      if (expired === undefined) return state
      answerAll(out, [expired])
      return { ...state, tx, outbox: Outbox.withdraw(state.outbox, timer.ticket) }
    }
    case "Grace": {
      if (timer.grace !== state.grace) return state
      const [roster, changes] = RosterState.expire(state.roster)
      return showRoster(state, roster, changes, out)
    }
  }
}

// --- the end of the client ------------------------------------------------------------------------------------

const close = (state: State, ticket: Ticket, out: Out): State => {
  const phase = state.phase
  if (phase._tag === "Stopped") {
    const next = state.shown._tag === "Closed" ? state : show(state, ClientState.Closed(), out)
    answer(out, ticket, Exit.void)
    return next
  }
  if (phase._tag === "Online") out.push(Command.Write({ conn: phase.conn, frame: closeFrame }))
  const conn = Session.connOf(phase)
  if (conn !== undefined) out.push(Command.CloseSocket({ conn, code: 1000 }))
  let next = state
  if (phase._tag === "Online") {
    out.push(Command.ShowRooms({ rooms: [] }))
    const [tx, answers] = Transactions.releaseRooms(next.tx)
    next = settleRooms({ ...next, tx, rooms: [] }, answers, out)
  }
  next = stop(next, new ClientClosed({ reason: "Closed" }), ClientState.Closed(), out)
  answer(out, ticket, Exit.void)
  return next
}

/**
 * The client stops: the last state is published first (so that a fiber it wakes finds the client stopped), then
 * every waiting call fails with `error`, and the roster empties.
 */
const stop = (state: State, error: ClientClosed, last: ClientState, out: Out): State => {
  let next = show({ ...state, phase: Phase.Stopped({ error }), resume: undefined, grace: state.grace + 1 }, last, out)
  const [outbox, items] = Outbox.drain(next.outbox)
  const [tx, waiting] = Transactions.drain(next.tx)
  for (const item of items) {
    if (item.answers) answer(out, item.ticket, Exit.fail(error))
  }
  for (const ticket of waiting) answer(out, ticket, Exit.fail(error))
  const [roster, changes] = RosterState.lose(next.roster, false)
  next = showRoster({ ...next, outbox, tx }, roster, changes, out)
  out.push(Command.Stop({ error }))
  return next
}
