/**
 * The "no framework" reference server for the benchmarks: Symple v4 by hand on plain `ws`, membership in Maps and
 * Sets, each outgoing frame serialised once and the same buffer written to every recipient.
 *
 * It implements what the benchmark exercises and what a fair comparison needs (auth, welcome, presence snapshot
 * and broadcast, join/leave, routing by `user|id`, user or room name, room array and broadcast under the
 * shared-room rule, `from` rewrite, presence sanitising, size limit, auth timeout, pings). It has no rate limit,
 * no token mode, no Redis and no virtual peers.
 *
 * With `BASELINE_COALESCE=1` it also coalesces writes: the first frame for a socket in a tick corks it and the
 * socket is uncorked on `process.nextTick`, so every frame queued for it in that tick leaves in one write. This
 * variant shows what write coalescing alone is worth on the machine at hand.
 *
 * Run with `--expose-gc`, it also serves `GET /bench/memory`: `process.memoryUsage()` after a full collection.
 *
 * Usage: node baseline-server.mjs [port]   (or PORT / HOST in the environment; port 0 picks a free port)
 * Prints one line `{"listening":<port>,"pid":<pid>}` on stdout once it accepts connections.
 */
import { randomBytes } from "node:crypto"
import * as Http from "node:http"
import type { Duplex } from "node:stream"
import { type RawData, WebSocket, WebSocketServer } from "ws"
import { collectedMemory, memoryPath } from "./stats.js"

const MAX_MESSAGE_SIZE = 64 * 1024
const AUTH_TIMEOUT_MS = 10_000
const PING_INTERVAL_MS = 30_000
const COALESCE = process.env["BASELINE_COALESCE"] === "1"
const RESERVED = new Set(["id", "user", "name", "type", "online"])

type JsonObject = { [key: string]: unknown }

interface Conn {
  readonly ws: WebSocket
  readonly socket: Duplex
  corked: boolean
  readonly host: string
  id: string
  address: string
  peer: JsonObject | undefined
  readonly rooms: Set<string>
  /** The encoded online presence, built once at auth and reused for every snapshot that includes this peer. */
  online: Buffer | undefined
  timer: NodeJS.Timeout | undefined
  alive: boolean
}

const conns = new Set<Conn>()
const byId = new Map<string, Conn>()
const rooms = new Map<string, Set<Conn>>()

const encode = (frame: JsonObject): Buffer => Buffer.from(JSON.stringify(frame))

const corked: Array<Conn> = []

const uncorkAll = (): void => {
  for (const conn of corked) {
    conn.corked = false
    conn.socket.uncork()
  }
  corked.length = 0
}

const send = (conn: Conn, data: Buffer): void => {
  if (conn.ws.readyState !== WebSocket.OPEN) return
  if (COALESCE && !conn.corked) {
    conn.corked = true
    conn.socket.cork()
    if (corked.push(conn) === 1) process.nextTick(uncorkAll)
  }
  conn.ws.send(data, { binary: false })
}

const sendError = (conn: Conn, status: number, message: string): void =>
  send(conn, encode({ type: "error", status, message }))

const isObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

const sharesRoom = (a: Conn, b: Conn): boolean => {
  const [small, large] = a.rooms.size <= b.rooms.size ? [a.rooms, b.rooms] : [b.rooms, a.rooms]
  for (const room of small) if (large.has(room)) return true
  return false
}

/** Every other peer sharing any of `conn`'s rooms, each once. */
const neighbours = (conn: Conn): Set<Conn> => {
  const out = new Set<Conn>()
  for (const room of conn.rooms) {
    const members = rooms.get(room)
    if (members !== undefined) { for (const m of members) if (m !== conn) out.add(m) }
  }
  return out
}

const join = (conn: Conn, room: string): void => {
  conn.rooms.add(room)
  let members = rooms.get(room)
  if (members === undefined) {
    members = new Set()
    rooms.set(room, members)
  }
  members.add(conn)
}

const leave = (conn: Conn, room: string): void => {
  conn.rooms.delete(room)
  const members = rooms.get(room)
  if (members === undefined) return
  members.delete(conn)
  if (members.size === 0) rooms.delete(room)
}

const presenceOf = (conn: Conn, online: boolean): Buffer =>
  encode({ type: "presence", from: conn.address, data: { ...conn.peer, online } })

const authenticate = (conn: Conn, frame: JsonObject): void => {
  const user = frame["user"]
  if (typeof user !== "string" || user === "") return sendError(conn, 401, "Missing user field")
  clearTimeout(conn.timer)
  conn.timer = undefined
  const id = randomBytes(12).toString("base64url").replace(/[-_]/g, "x")
  const name = typeof frame["name"] === "string" && frame["name"] !== "" ? frame["name"] : user
  const peer: JsonObject = {}
  const data = frame["data"]
  if (isObject(data)) { for (const key in data) if (!RESERVED.has(key)) peer[key] = data[key] }
  Object.assign(peer, { id, user, name, online: true, type: "Peer", host: conn.host })
  conn.id = id
  conn.address = `${user}|${id}`
  conn.peer = peer
  byId.set(id, conn)
  join(conn, user)
  const wanted = frame["rooms"]
  if (Array.isArray(wanted)) { for (const r of wanted) if (typeof r === "string" && r !== "") join(conn, r) }
  conn.online = presenceOf(conn, true)
  send(conn, encode({ type: "welcome", protocol: "symple/4", status: 200, peer, rooms: [...conn.rooms] }))
  const others = neighbours(conn)
  for (const other of others) if (other.online !== undefined) send(conn, other.online)
  for (const other of others) send(other, conn.online)
}

/** Recipients of a routed frame under the shared-room rule; undefined when the frame is dropped. */
const recipients = (sender: Conn, to: unknown): Iterable<Conn> | undefined => {
  if (to === undefined) return neighbours(sender)
  if (typeof to === "string") {
    const bar = to.indexOf("|")
    if (bar >= 0) {
      const target = byId.get(to.slice(bar + 1))
      if (target === undefined) return undefined
      if (target === sender) return to === sender.address ? [sender] : undefined
      return sharesRoom(sender, target) ? [target] : undefined
    }
    const out = new Set<Conn>()
    const members = rooms.get(to)
    if (members !== undefined) {
      const member = sender.rooms.has(to)
      for (const m of members) if (m !== sender && (member || sharesRoom(sender, m))) out.add(m)
    }
    const session = byId.get(to)
    if (session !== undefined && session !== sender && sharesRoom(sender, session)) out.add(session)
    return out
  }
  if (Array.isArray(to)) {
    const out = new Set<Conn>()
    for (const room of to) {
      if (typeof room !== "string" || !sender.rooms.has(room)) continue
      const members = rooms.get(room)
      if (members !== undefined) { for (const m of members) if (m !== sender) out.add(m) }
    }
    return out
  }
  return undefined
}

const route = (conn: Conn, frame: JsonObject): void => {
  frame["from"] = conn.address
  if (frame["type"] === "presence" && conn.peer !== undefined) {
    const data = isObject(frame["data"]) ? frame["data"] : {}
    frame["data"] = {
      ...data,
      id: conn.id,
      user: conn.peer["user"],
      name: conn.peer["name"],
      type: "Peer",
      online: true
    }
  }
  const targets = recipients(conn, frame["to"])
  if (targets === undefined) return
  let data: Buffer | undefined
  for (const target of targets) send(target, data ??= encode(frame))
}

const onFrame = (conn: Conn, raw: RawData): void => {
  const bytes = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw)
  if (bytes.length > MAX_MESSAGE_SIZE) {
    sendError(conn, 413, "Message too large")
    conn.ws.close(1009, "Message too large")
    return
  }
  let frame: unknown
  try {
    frame = JSON.parse(bytes.toString("utf8"))
  } catch {
    return sendError(conn, 400, "Invalid JSON")
  }
  if (!isObject(frame)) return sendError(conn, 400, "Frame must be a JSON object")
  const type = frame["type"]
  if (conn.peer === undefined) {
    if (type === "auth") return authenticate(conn, frame)
    sendError(conn, 401, "Not authenticated")
    conn.ws.close()
    return
  }
  switch (type) {
    case "message":
    case "presence":
    case "command":
    case "event":
      return route(conn, frame)
    case "join":
    case "leave": {
      const room = frame["room"]
      if (room === undefined || room === "") return
      if (typeof room !== "string") return sendError(conn, 400, "Room must be a string")
      if (type === "join") {
        join(conn, room)
        send(conn, encode({ type: "join:ok", room }))
        for (const m of rooms.get(room) ?? []) if (m !== conn && m.online !== undefined) send(conn, m.online)
      } else {
        leave(conn, room)
        send(conn, encode({ type: "leave:ok", room }))
      }
      return
    }
    case "close":
      conn.ws.close()
      return
    default:
      return sendError(conn, 400, `Unknown frame type: ${String(type)}`)
  }
}

const onClose = (conn: Conn): void => {
  clearTimeout(conn.timer)
  conns.delete(conn)
  if (conn.peer === undefined) return
  const offline = presenceOf(conn, false)
  for (const other of neighbours(conn)) send(other, offline)
  for (const room of [...conn.rooms]) leave(conn, room)
  byId.delete(conn.id)
}

const http = Http.createServer((req, res) => {
  const memory = req.url === memoryPath ? collectedMemory() : undefined
  if (req.url === "/health") res.writeHead(200, { "content-type": "text/plain" }).end("ok")
  else if (memory !== undefined) res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(memory))
  else res.writeHead(404).end()
})
// ws enforces a hard cap a little above the protocol limit, so a 413 can still be sent for frames just over it.
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 2 * MAX_MESSAGE_SIZE })

wss.on("connection", (ws, req) => {
  const conn: Conn = {
    ws,
    socket: req.socket,
    corked: false,
    host: req.socket.remoteAddress ?? "",
    id: "",
    address: "",
    peer: undefined,
    rooms: new Set(),
    online: undefined,
    timer: undefined,
    alive: true
  }
  conns.add(conn)
  conn.timer = setTimeout(() => {
    sendError(conn, 408, "Authentication timeout")
    ws.close()
  }, AUTH_TIMEOUT_MS)
  ws.on("message", (raw) => onFrame(conn, raw))
  ws.on("pong", () => {
    conn.alive = true
  })
  ws.on("close", () => onClose(conn))
  ws.on("error", () => ws.terminate())
})

const pinger = setInterval(() => {
  for (const conn of conns) {
    if (!conn.alive) conn.ws.terminate()
    else {
      conn.alive = false
      conn.ws.ping()
    }
  }
}, PING_INTERVAL_MS)

const shutdown = (): void => {
  clearInterval(pinger)
  const notice = encode({
    type: "event",
    name: "shutdown",
    subtype: "shutdown",
    message: "Server shutting down"
  })
  for (const conn of conns) {
    send(conn, notice)
    conn.ws.close(1001, "Server shutting down")
  }
  // Exiting explicitly lets `--cpu-prof` write its profile; peers that do not finish the close handshake are cut.
  setTimeout(() => process.exit(0), 200).unref()
  wss.close()
  http.close(() => process.exit(0))
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)

const port = Number(process.argv[2] ?? process.env["PORT"] ?? 4500)
const host = process.env["HOST"] ?? "127.0.0.1"
http.listen(port, host, () => {
  const address = http.address()
  const bound = typeof address === "object" && address !== null ? address.port : port
  process.stdout.write(`${JSON.stringify({ listening: bound, pid: process.pid })}\n`)
})
