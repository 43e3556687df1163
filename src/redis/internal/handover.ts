/**
 * Owns the handover of detached sessions between nodes: a resume token that reaches node B for a session its
 * replica places on node A (a load balancer moved the client) moves the session to B, so that the cluster resumes
 * it as one server would.
 *
 * Messages travel on each node's handover channel (`<prefix>:node:<node>:handover`, which only that node
 * subscribes to: the token never reaches the directory or any other node), on the publishing connection of the
 * sender, after every frame it queued before them; a message is a 4-byte big-endian length, a JSON header (`op`,
 * `from`: the sending node, `ref`: the request it answers), then, for `handed`, each held frame as a 4-byte length
 * and its bytes.
 *
 * 1. B sends A `request` (`id`, `token`, `user`). From then on B holds what its own peers route to the session
 *    (the session's handle in B's replica becomes an `Arriving` one) instead of sending it to A.
 * 2. A checks the token as a local resume does (`Broker.Local.handOver`). Refused: `refused`. Good: the session
 *    leaves A's part of the directory quietly (its hash entry goes, no `disconnect`, no presence), A's replica places
 *    it on B, and A sends `handed` (`peer`, `rooms`, the held frames). For `forwardMillis` after that, frames that
 *    other nodes still route to A for the session are forwarded to B.
 * 3. B takes the session over (`Broker.Handed.take`: the frames from A, then what B held meanwhile, in order) and
 *    publishes the directory event `move` (`node`: B, `from`: A, `entry`), which also writes B's hash entry. Nodes
 *    that place the session on A hold what their peers route to it, send A `fence`, and once A answers `fenced`
 *    send what they held to B.
 *
 * Why every sender's frames stay in order: A's peers route to A's buffer, then to B on A's publishing connection
 * after `handed`. B's peers route to A before `request` (on B's publishing connection, so ahead of it: they are in
 * A's buffer), then to B's own hold, delivered after A's frames. A third node C routes to A until it learns the
 * move; its `fence` leaves on its publishing connection after those frames, so A has forwarded them when it reads
 * the fence, and `fenced` leaves A after the forwarded frames: Redis has published them to B before C sends B
 * anything more. B reads `handed` before anything A forwards (A's one publishing connection, B's one subscriber).
 *
 * Without an answer within `timeoutMillis` (A was killed, or Redis is away) or with `refused`, B gives up: the
 * session's handle points at A again, what B held goes to A, and the new connection gets a new session. A `handed`
 * that arrives after B gave up, or whose connection went meanwhile, ends the session (moved to B, then
 * disconnected: one offline presence to its neighbours). A node that does not answer a fence within the bound is
 * taken as gone: the held frames go to B.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Message from "../../protocol/Message.js"
import type * as Peer from "../../protocol/Peer.js"
import type * as Broker from "../../server/Broker.js"
import type * as PeerRegistry from "../../server/PeerRegistry.js"
import * as State from "../../server/State.js"

type Registry = Broker.Local["registry"]

/**
 * What the handover needs of its broker.
 *
 * @since 0.2.0
 * @internal
 */
export interface Link {
  /** This node's id. */
  readonly node: string
  /** The server's own registry (changes made through it are not published). */
  readonly registry: Registry
  readonly local: Broker.Local
  /** Runs a registry transition (they complete synchronously). */
  readonly runNow: <A>(effect: Effect.Effect<A>) => A
  /** The handover channel of a node. */
  readonly channel: (node: string) => string
  /** Publishes on this node's publishing connection, after the frames queued before; `false` when it is away. */
  readonly publish: (channel: string, message: Uint8Array) => boolean
  /** A handle that routes to session `id` on `node` (its frames go into that node's envelope). */
  readonly remote: (node: string, id: string) => PeerRegistry.Handle
  /** The session left this node's part of the directory without ending (its hash entry goes, no event). */
  readonly removed: (id: string) => void
  /** The server's registry as the broker wraps it (its changes of local sessions are published). */
  readonly published: Registry
  /** How long B waits for A, and C for A's `fenced`. */
  readonly timeoutMillis: number
  /** How long A forwards what reaches it for a session it handed over. */
  readonly forwardMillis: number
}

interface Header {
  readonly op: "request" | "handed" | "refused" | "fence" | "fenced"
  readonly from: string
  readonly ref: string
  readonly id?: string | undefined
  readonly token?: string | undefined
  readonly user?: string | undefined
  readonly peer?: Peer.Peer | undefined
  readonly rooms?: ReadonlyArray<string> | undefined
}

/**
 * A handover message (see the module header).
 *
 * @since 0.2.0
 * @internal
 */
export const encode = (header: Header, frames: ReadonlyArray<Uint8Array> = []): Buffer => {
  const json = Buffer.from(JSON.stringify(header))
  let size = 4 + json.length
  for (const frame of frames) size += 4 + frame.length
  const out = Buffer.allocUnsafe(size)
  out.writeUInt32BE(json.length, 0)
  json.copy(out, 4)
  let at = 4 + json.length
  for (const frame of frames) {
    out.writeUInt32BE(frame.length, at)
    out.set(frame, at + 4)
    at += 4 + frame.length
  }
  return out
}

const isString = (value: unknown): value is string => typeof value === "string" && value !== ""

/**
 * A handover message's header and frames; `undefined` when it is not one.
 *
 * @since 0.2.0
 * @internal
 */
export const decode = (
  message: Buffer
): { readonly header: Header; readonly frames: ReadonlyArray<Buffer> } | undefined => {
  if (message.length < 4) return undefined
  const length = message.readUInt32BE(0)
  if (4 + length > message.length) return undefined
  let header: Header
  try {
    header = JSON.parse(message.toString("utf8", 4, 4 + length))
  } catch {
    return undefined
  }
  if (typeof header !== "object" || header === null || !isString(header.from) || !isString(header.ref)) {
    return undefined
  }
  const frames: Array<Buffer> = []
  let at = 4 + length
  while (at < message.length) {
    if (at + 4 > message.length) return undefined
    const size = message.readUInt32BE(at)
    if (at + 4 + size > message.length) return undefined
    frames.push(message.subarray(at + 4, at + 4 + size))
    at += 4 + size
  }
  return { header, frames }
}

/**
 * A handle that holds what is routed to a session for a while (bounded by the handover's timeout): while it is on
 * its way to this node, or while this node waits for a fence.
 */
class Holding implements PeerRegistry.Handle {
  frames: Array<Uint8Array> = []
  timer: ReturnType<typeof setTimeout> | undefined = undefined
  constructor(readonly node: string, readonly id: string, readonly ref: string) {}
  send(bytes: Uint8Array): void {
    this.frames.push(bytes)
  }
}

/** B's side of a handover: the session on its way here (its handle names A until it arrives). */
class Arriving extends Holding {
  state: "waiting" | "handed" | "taken" | "done" = "waiting"
  held: ReadonlyArray<Uint8Array> = []
  constructor(
    node: string,
    id: string,
    ref: string,
    readonly answer: (handed: Broker.Handed | undefined) => void
  ) {
    super(node, id, ref)
  }
}

/** A handle that drops what is sent to it: a session taken here only to end. */
const sink: PeerRegistry.Handle = { send: () => {} }

/**
 * The handovers of one node, in every role (see the module header).
 *
 * @since 0.2.0
 * @internal
 */
export class Handovers {
  /** B: sessions on their way here, by id. */
  readonly arriving = new Map<string, Arriving>()
  /** A: sessions handed over, by id, to the node they went to. */
  readonly forwarding = new Map<string, { readonly to: string; readonly timer: ReturnType<typeof setTimeout> }>()
  /** C: sessions whose moves wait for a fence, by the fence's ref. */
  readonly fencing = new Map<string, Holding>()
  closed = false

  constructor(readonly link: Link) {}

  /** Whether envelopes may carry frames for a session handled here (a cheap test per record). */
  get active(): boolean {
    return this.arriving.size > 0 || this.forwarding.size > 0
  }

  /** B asks `node` for session `id` (`Broker.Attached.handover`). */
  request(request: Broker.HandoverRequest): Effect.Effect<Broker.Handed | undefined> {
    return Effect.callback<Broker.Handed | undefined>((resume) => {
      const link = this.link
      const { id, node } = request
      const current = State.session(link.registry.snapshotUnsafe(), id)
      if (this.closed || this.arriving.has(id) || current?.member.handle.node !== node) {
        return resume(Effect.succeed(undefined))
      }
      const arriving = new Arriving(node, id, Message.randomId(), (handed) => resume(Effect.succeed(handed)))
      this.arriving.set(id, arriving)
      // B's frames for the session queued so far leave ahead of the request (they reach A's buffer); what its
      // peers route to it from now on is held here.
      link.runNow(link.registry.resume(id, arriving))
      const sent = link.publish(
        link.channel(node),
        encode({ op: "request", from: link.node, ref: arriving.ref, id, token: request.token, user: request.user })
      )
      if (!sent) return this.giveUp(arriving)
      arriving.timer = setTimeout(() => this.giveUp(arriving), Math.min(link.timeoutMillis, request.withinMillis))
      return Effect.sync(() => this.giveUp(arriving))
    })
  }

  /** B: no session after all. Its handle names A again, and what was held here goes there. */
  giveUp(arriving: Arriving): void {
    if (arriving.state !== "waiting") return
    arriving.state = "done"
    clearTimeout(arriving.timer)
    if (this.arriving.get(arriving.id) === arriving) this.arriving.delete(arriving.id)
    this.restore(arriving)
    arriving.answer(undefined)
  }

  /** The session's handle, if it still is `holding`, becomes the remote one; the frames held go through it. */
  private restore(holding: Holding): void {
    const link = this.link
    const current = State.session(link.registry.snapshotUnsafe(), holding.id)
    const frames = holding.frames
    holding.frames = []
    if (current?.member.handle !== holding) return
    const remote = link.remote(holding.node, holding.id)
    link.runNow(link.registry.resume(holding.id, remote))
    for (const bytes of frames) remote.send(bytes, undefined as never)
  }

  /**
   * B: the session has been taken over (`Handed.take`, then the registry's `resume` through the broker): the node
   * it came from, for the `move` event; `undefined` for any other resume.
   */
  arrived(id: string): string | undefined {
    const arriving = this.arriving.get(id)
    if (arriving === undefined || arriving.state !== "taken") return undefined
    this.arriving.delete(id)
    arriving.state = "done"
    // Back on a node that handed it over before: what reaches it here is its own again, not the former node's.
    const forward = this.forwarding.get(id)
    if (forward !== undefined) {
      clearTimeout(forward.timer)
      this.forwarding.delete(id)
    }
    return arriving.node
  }

  /**
   * Frames from an envelope: those for a session on its way here are held with it, those for a session handed
   * over are forwarded to its new node. Called for every record while `active`.
   */
  deliver(ids: ReadonlyArray<string>, bytes: Uint8Array): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      const arriving = this.arriving.get(id)
      if (arriving !== undefined && (arriving.state === "waiting" || arriving.state === "handed")) {
        arriving.send(bytes)
        continue
      }
      const forward = this.forwarding.get(id)
      if (forward !== undefined) this.link.remote(forward.to, id).send(bytes, undefined as never)
    }
  }

  /**
   * C: the directory says session `id` moved from `from` to `to`. `true` when handled here (a session this node
   * placed on `from` now waits for its fence); `false` for the caller to treat it as a connect of `to`'s.
   */
  moved(to: string, from: string, id: string): boolean {
    const link = this.link
    const current = State.session(link.registry.snapshotUnsafe(), id)
    if (current === undefined) return false
    const at = current.member.handle.node
    if (at === to) return false
    if (at !== from || this.closed) return true
    const holding = new Holding(to, id, Message.randomId())
    this.fencing.set(holding.ref, holding)
    link.runNow(link.registry.resume(id, holding))
    if (!link.publish(link.channel(from), encode({ op: "fence", from: link.node, ref: holding.ref, id }))) {
      this.fenced(holding.ref)
      return true
    }
    holding.timer = setTimeout(() => this.fenced(holding.ref), link.timeoutMillis)
    return true
  }

  private fenced(ref: string): void {
    const holding = this.fencing.get(ref)
    if (holding === undefined) return
    this.fencing.delete(ref)
    clearTimeout(holding.timer)
    this.restore(holding)
  }

  /** A message on this node's handover channel. */
  onMessage(message: Buffer): void {
    const decoded = decode(message)
    if (decoded === undefined || this.closed) return
    const { header, frames } = decoded
    switch (header.op) {
      case "request":
        return this.handOver(header)
      case "handed":
        return this.handed(header, frames)
      case "refused": {
        const arriving = header.id === undefined ? undefined : this.arriving.get(header.id)
        if (arriving !== undefined && arriving.ref === header.ref) this.giveUp(arriving)
        return
      }
      case "fence":
        // Everything that reached this node for the session before the fence has been forwarded (queued ahead).
        this.link.publish(
          this.link.channel(header.from),
          encode({ op: "fenced", from: this.link.node, ref: header.ref })
        )
        return
      case "fenced":
        return this.fenced(header.ref)
    }
  }

  /** A: another node asks for a detached session of this node. */
  private handOver(header: Header): void {
    const link = this.link
    const to = header.from
    if (!isString(header.id) || !isString(header.token) || !isString(header.user)) return
    const handed = link.local.handOver(header.token, header.user, link.remote(to, header.id))
    if (handed === undefined) {
      link.publish(link.channel(to), encode({ op: "refused", from: link.node, ref: header.ref, id: header.id }))
      return
    }
    link.removed(handed.id)
    link.publish(
      link.channel(to),
      encode(
        { op: "handed", from: link.node, ref: header.ref, id: handed.id, peer: handed.peer, rooms: handed.rooms },
        handed.frames
      )
    )
    const previous = this.forwarding.get(handed.id)
    if (previous !== undefined) clearTimeout(previous.timer)
    const timer = setTimeout(() => {
      if (this.forwarding.get(handed.id)?.timer === timer) this.forwarding.delete(handed.id)
    }, link.forwardMillis)
    this.forwarding.set(handed.id, { to, timer })
  }

  /** B: the session, from A. */
  private handed(header: Header, frames: ReadonlyArray<Buffer>): void {
    const id = header.id
    if (!isString(id) || header.peer === undefined) return
    const arriving = this.arriving.get(id)
    if (arriving === undefined || arriving.ref !== header.ref || arriving.state !== "waiting") {
      // Too late (this node gave up): nobody takes the session, which ends.
      return this.drop(id, header.from, undefined)
    }
    clearTimeout(arriving.timer)
    arriving.state = "handed"
    // Copies: the frames are views of the message.
    arriving.held = frames.map((frame) => Buffer.from(frame))
    const peer = header.peer
    arriving.answer({
      peer,
      rooms: header.rooms ?? [],
      take: () => {
        arriving.state = "taken"
        const out = [...arriving.held, ...arriving.frames]
        arriving.held = []
        arriving.frames = []
        return out
      },
      drop: () => this.drop(id, arriving.node, arriving)
    })
  }

  /**
   * B: a session handed over that nobody takes: it becomes this node's (so the cluster places it here), then ends
   * as any session does (one offline presence to its neighbours).
   */
  private drop(id: string, from: string, arriving: Arriving | undefined): void {
    const link = this.link
    if (arriving !== undefined) {
      if (arriving.state !== "handed") return
      arriving.state = "taken"
    }
    const current = State.session(link.registry.snapshotUnsafe(), id)
    if (current === undefined || (current.member.handle !== arriving && current.member.handle.node !== from)) {
      if (arriving !== undefined) this.arriving.delete(id)
      return
    }
    if (arriving === undefined) {
      // The handle names A again (this node gave up): make it one on its way here, taken at once.
      const late = new Arriving(from, id, "", () => {})
      late.state = "taken"
      this.arriving.set(id, late)
    }
    // Through the server's registry as the broker wraps it: `move` is published, then `disconnect`.
    link.runNow(link.published.resume(id, sink))
    const removed = link.runNow(link.published.disconnect(id))
    if (removed !== undefined) link.local.announce(removed.session, removed.neighbours, false)
  }

  /** The node stops: nothing more is held or forwarded. */
  close(): void {
    this.closed = true
    for (const arriving of [...this.arriving.values()]) this.giveUp(arriving)
    for (const forward of this.forwarding.values()) clearTimeout(forward.timer)
    this.forwarding.clear()
    for (const ref of [...this.fencing.keys()]) this.fenced(ref)
  }
}
