/**
 * Socket.IO 4 as a user would scale it out instead: `@socket.io/redis-adapter` on node-redis, WebSocket transport
 * only. Relays what the cluster benchmark sends: `direct` (`{to: socket id}`) to that socket wherever it is, `room`
 * (`{room}`) to the room's other members; `join` joins a room and acknowledges.
 *
 * Usage: node socketio.mjs [port]; `BENCH_REDIS=<url>` adds the Redis adapter. Prints `{"listening":<port>,"pid":…}`.
 */
import { createAdapter } from "@socket.io/redis-adapter"
import * as Http from "node:http"
import { createClient } from "redis"
import { Server } from "socket.io"

const port = Number(process.argv[2] ?? process.env["PORT"] ?? 0)
const http = Http.createServer()
const io = new Server(http, { transports: ["websocket"], serveClient: false })

const url = process.env["BENCH_REDIS"]
if (url !== undefined && url !== "") {
  const pub = createClient({ url })
  const sub = pub.duplicate()
  await Promise.all([pub.connect(), sub.connect()])
  io.adapter(createAdapter(pub, sub))
}

interface Relayed {
  readonly to?: string
  readonly room?: string
}

io.on("connection", (socket) => {
  socket.on("join", (room: string, ack: () => void) => {
    void socket.join(room)
    ack()
  })
  socket.on("direct", (message: Relayed) => {
    if (message.to !== undefined) io.to(message.to).emit("msg", message)
  })
  socket.on("room", (message: Relayed) => {
    if (message.room !== undefined) socket.to(message.room).emit("msg", message)
  })
})

http.listen(port, "127.0.0.1", () => {
  const address = http.address() as { port: number }
  process.stdout.write(`${JSON.stringify({ listening: address.port, pid: process.pid })}\n`)
})
process.on("SIGTERM", () => process.exit(0))
