/**
 * A redis-server of the benchmark's own, on a free loopback port, persistence off (`bench/cluster.ts`, and
 * `ours-limited-redis` in `bench/run.ts`). `stop` kills it.
 */
import { spawn } from "node:child_process"
import * as Net from "node:net"
import { freePort } from "../test/support/freePort.js"

export interface RedisProc {
  readonly pid: number
  readonly port: number
  readonly stop: () => void
}

export const startRedis = async (): Promise<RedisProc> => {
  const port = await freePort("127.0.0.1")
  const child = spawn("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no"
  ], {
    stdio: "ignore"
  })
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = Net.connect({ port, host: "127.0.0.1" }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return { pid: child.pid!, port, stop: () => child.kill("SIGKILL") }
}
