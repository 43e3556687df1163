/**
 * The streamer example as a real process, with its output read line by line.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const repository = fileURLToPath(new URL("../../", import.meta.url))

export interface StreamerProcess {
  /** Waits until a line of its output (stdout or stderr), from offset `from` on, matches. */
  readonly waitForLine: (pattern: RegExp, timeout?: number, from?: number) => Promise<string>
  /** Everything it printed so far. */
  readonly output: () => string
  /** Resolves with the exit code (or the signal) once it has ended. */
  readonly exited: Promise<number | string>
  readonly stop: () => Promise<void>
}

export const spawnStreamer = (
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv = process.env
): StreamerProcess => {
  const child = spawn(process.execPath, ["--import", "tsx", "examples/streamer.ts", ...args], {
    cwd: repository,
    env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  let text = ""
  const waiters = new Set<() => void>()
  const append = (chunk: Buffer) => {
    text += chunk.toString("utf8")
    for (const wake of waiters) wake()
  }
  child.stdout.on("data", append)
  child.stderr.on("data", append)
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => {
      resolve(code ?? signal ?? "unknown")
      for (const wake of waiters) wake()
    })
  )
  const waitForLine = (pattern: RegExp, timeout = 15_000, from = 0) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const line = text.slice(from).split("\n").find((l) => pattern.test(l))
        if (line === undefined) return
        done()
        resolve(line)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`The streamer printed no line matching ${pattern} within ${timeout} ms:\n${text}`))
      }, timeout)
      const done = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  return {
    waitForLine,
    output: () => text,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}

/** A streamer connected to the server on `port`, once it is online. */
export const startStreamer = async (port: number, args: ReadonlyArray<string> = []): Promise<StreamerProcess> => {
  const streamer = spawnStreamer(["--url", `ws://127.0.0.1:${port}`, ...args])
  try {
    await streamer.waitForLine(/streamer online as/, 30_000)
  } catch (error) {
    await streamer.stop()
    throw error
  }
  return streamer
}
