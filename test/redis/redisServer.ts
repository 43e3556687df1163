/**
 * A redis-server of the test's own, on a free loopback port (never 6379), with persistence off: started in the
 * current scope, waited for until it answers PING, and stopped (SIGKILL, then waited for) when the scope closes.
 * `stop` and `restart` (on the same port) let a test take Redis away and bring it back.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { freePort } from "../support/freePort.js"

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Kills the server; resolves once the process has exited. */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port; resolves once it answers. */
  readonly restart: Effect.Effect<void, Error>
}

/** One PING over a raw socket: `true` when the server answers +PONG. */
const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1" })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
    socket.once("connect", () => socket.write("PING\r\n"))
  })

const spawn = (port: number): ChildProcess.ChildProcess =>
  ChildProcess.spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
    { stdio: "ignore" }
  )

const waitReady = (port: number, child: ChildProcess.ChildProcess): Promise<void> =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`redis-server exited with ${child.exitCode}`))
      void ping(port).then((ok) => {
        if (ok) resolve()
        else if (Date.now() > deadline) reject(new Error("redis-server did not answer within 10 s"))
        else setTimeout(attempt, 20)
      })
    }
    attempt()
  })

const kill = (child: ChildProcess.ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/**
 * Starts a redis-server for the current scope.
 */
export const startRedis: Effect.Effect<RedisServer, Error, Scope.Scope> = Effect.gen(function*() {
  const port = yield* Effect.promise(() => freePort("127.0.0.1"))
  let child = spawn(port)
  yield* Effect.addFinalizer(() => Effect.promise(() => kill(child)))
  yield* Effect.tryPromise({ try: () => waitReady(port, child), catch: (e) => e as Error })
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: Effect.promise(() => kill(child)),
    restart: Effect.tryPromise({
      try: () => {
        child = spawn(port)
        return waitReady(port, child)
      },
      catch: (e) => e as Error
    })
  }
})
