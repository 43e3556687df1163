/**
 * A small scripted Symple server for client tests: a real `ws` server on port 0 whose replies are written by
 * each test, replaying the frames recorded from the reference servers.
 */
import { Effect, Queue, Scope } from "effect"
import { type WebSocket, WebSocketServer } from "ws"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
export type JsonObject = { readonly [key: string]: Json }

export interface Connection {
  readonly index: number
  readonly socket: WebSocket
  /** Every frame received, parsed. */
  readonly received: Queue.Queue<JsonObject>
  /** Resolves with the close code seen by the server. */
  readonly closed: Promise<number>
  readonly send: (frame: JsonObject | string) => void
  readonly next: Effect.Effect<JsonObject>
  readonly nextOf: (type: string) => Effect.Effect<JsonObject>
}

export interface ScriptedServer {
  readonly port: number
  readonly url: string
  readonly connections: Queue.Queue<Connection>
  readonly all: ReadonlyArray<Connection>
  readonly nextConnection: Effect.Effect<Connection>
  /** Stops listening and drops every connection (abruptly, as a killed server would). */
  readonly kill: Effect.Effect<void>
}

export const make = (options: { readonly port?: number } = {}): Effect.Effect<ScriptedServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const connections = yield* Queue.unbounded<Connection>()
    const all: Array<Connection> = []
    const wss = yield* Effect.acquireRelease(
      Effect.callback<WebSocketServer>((resume) => {
        const server: WebSocketServer = new WebSocketServer(
          { port: options.port ?? 0, host: "127.0.0.1" },
          (): void => resume(Effect.succeed(server))
        )
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          for (const client of server.clients) client.terminate()
          server.close(() => resume(Effect.void))
        })
    )
    wss.on("connection", (socket) => {
      const received = Effect.runSync(Queue.unbounded<JsonObject>())
      const closed = new Promise<number>((resolve) => socket.on("close", (code) => resolve(code)))
      const conn: Connection = {
        index: all.length,
        socket,
        received,
        closed,
        send: (frame) => socket.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
        next: Queue.take(received),
        nextOf: (type) =>
          Queue.take(received).pipe(
            Effect.repeat({ until: (f) => f.type === type }),
            Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.fail(new Error(`no ${type} frame`)) }),
            Effect.orDie
          )
      }
      socket.on("message", (data) => {
        try {
          Queue.offerUnsafe(received, JSON.parse(String(data)) as JsonObject)
        } catch {
          // not JSON: not something a client sends
        }
      })
      all.push(conn)
      Queue.offerUnsafe(connections, conn)
    })
    const address = wss.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return {
      port,
      url: `ws://127.0.0.1:${port}`,
      connections,
      all,
      nextConnection: Queue.take(connections).pipe(
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.fail(new Error("no connection")) }),
        Effect.orDie
      ),
      kill: Effect.callback<void>((resume) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => resume(Effect.void))
      })
    }
  })

/** A C++-server style welcome for an auth frame. */
export const welcome = (auth: JsonObject, id: string, extraRooms: ReadonlyArray<string> = []): JsonObject => {
  const user = String(auth.user)
  const rooms = Array.isArray(auth.rooms) ? (auth.rooms as ReadonlyArray<string>) : []
  return {
    type: "welcome",
    protocol: "symple/4",
    status: 200,
    peer: { id, user, name: typeof auth.name === "string" ? auth.name : user, online: true, type: "Peer" },
    rooms: Array.from(new Set([user, ...rooms, ...extraRooms]))
  }
}

/** Accepts the next connection, answers its auth with a welcome and returns the connection and the auth frame. */
export const accept = (server: ScriptedServer, id: string, extraRooms: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const conn = yield* server.nextConnection
    const auth = yield* conn.nextOf("auth")
    conn.send(welcome(auth, id, extraRooms))
    return { conn, auth } as const
  })

export const presence = (user: string, id: string, online: boolean, extra: JsonObject = {}): JsonObject => ({
  type: "presence",
  from: `${user}|${id}`,
  data: { id, user, name: user, online, type: "Peer", ...extra }
})
