/**
 * A TCP relay in front of a server, whose connections can be cut as a network failure would: both sockets are
 * destroyed, so neither end gets a WebSocket close frame. While the relay is `down`, it also drops every new
 * connection at once (the network is still out); `up` lets them through again.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as Net from "node:net"

export interface Relay {
  readonly url: string
  /** Destroys every connection through the relay. */
  readonly cut: Effect.Effect<void>
  /** Cuts, and drops new connections until `up`. */
  readonly down: Effect.Effect<void>
  readonly up: Effect.Effect<void>
}

export const relay = (port: number): Effect.Effect<Relay, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Relay & { readonly server: Net.Server }>((resume) => {
      const sockets = new Set<Net.Socket>()
      let refusing = false
      const server = Net.createServer((downstream) => {
        if (refusing) {
          downstream.destroy()
          return
        }
        const upstream = Net.connect(port, "127.0.0.1")
        const end = () => {
          downstream.destroy()
          upstream.destroy()
          sockets.delete(downstream)
          sockets.delete(upstream)
        }
        for (const socket of [downstream, upstream]) {
          sockets.add(socket)
          socket.on("error", end)
          socket.on("close", end)
        }
        downstream.pipe(upstream)
        upstream.pipe(downstream)
      })
      const cut = Effect.sync(() => {
        for (const socket of Array.from(sockets)) socket.destroy()
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address() as Net.AddressInfo
        resume(Effect.succeed({
          url: `ws://127.0.0.1:${address.port}`,
          server,
          cut,
          down: Effect.andThen(Effect.sync(() => void (refusing = true)), cut),
          up: Effect.sync(() => void (refusing = false))
        }))
      })
    }),
    ({ cut, server }) =>
      Effect.andThen(
        cut,
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
      )
  )
