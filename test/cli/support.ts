/**
 * The `symple-ts` command as a child process: its output read line by line, its input written line by line.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { buildCommand } from "../../scripts/build-command.js"

export const root = fileURLToPath(new URL("../..", import.meta.url))

let bundled: Promise<string> | undefined

/**
 * The command as `npm run build` makes it (the bundle users run), built from this checkout once per test file into
 * a directory of its own (removed when the file's process exits), and started on plain `node`.
 */
export const bundle: Effect.Effect<string> = Effect.promise(() =>
  bundled ??= (async () => {
    const dir = mkdtempSync(Path.join(Os.tmpdir(), "symple-ts-command-"))
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }))
    const file = Path.join(dir, "symple-ts.mjs")
    await buildCommand(file)
    return file
  })()
)

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Program {
  readonly child: ChildProcessWithoutNullStreams
  /** Every line written to stdout so far. */
  readonly lines: ReadonlyArray<string>
  /** Everything written to stderr so far. */
  readonly stderr: () => string
  /** Waits for a stdout line matching `pattern` (seen already or to come) and returns it. */
  readonly line: (pattern: RegExp, timeoutMs?: number) => Effect.Effect<string, Error>
  /** Writes one line to stdin. */
  readonly type: (line: string) => Effect.Effect<void>
  /** Waits for the process to exit. */
  readonly exited: (timeoutMs?: number) => Effect.Effect<Exited, Error>
}

/**
 * Starts the command with `args` (environment: this one without `SYMPLE_*`, plus `env`; in `cwd`, by default the
 * checkout); killed when the scope closes if it is still running.
 */
export const run = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  options: { readonly cwd?: string | undefined } = {}
): Effect.Effect<Program, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.map(bundle, (file) => {
      const base: NodeJS.ProcessEnv = { ...process.env }
      for (const key of Object.keys(base)) if (key.startsWith("SYMPLE_")) delete base[key]
      const child = spawn(process.execPath, [file, ...args], {
        cwd: options.cwd ?? root,
        env: { ...base, ...env },
        stdio: ["pipe", "pipe", "pipe"]
      })
      const lines: Array<string> = []
      let partial = ""
      let errors = ""
      const waiters = new Set<() => void>()
      const wake = () => {
        for (const waiter of waiters) waiter()
      }
      child.stdout.on("data", (chunk: Buffer) => {
        const parts = (partial + chunk.toString("utf8")).split("\n")
        partial = parts.pop() ?? ""
        lines.push(...parts)
        wake()
      })
      child.stderr.on("data", (chunk: Buffer) => {
        errors += chunk.toString("utf8")
      })
      let exit: Exited | undefined
      // "close", not "exit": it comes once stdout and stderr are drained, so what the process wrote is all there.
      child.once("close", (code, signal) => {
        if (partial !== "") lines.push(partial)
        partial = ""
        exit = { code, signal }
        wake()
      })
      child.stdin.on("error", () => {})
      const describe = () => `stdout:\n${lines.join("\n")}\nstderr:\n${errors}`
      /**
       * Settles with what `outcome` gives once it gives something (it is asked now, and again whenever the process
       * writes a line or exits), or fails after `timeoutMs` saying `late` and what the process wrote.
       */
      const waitUntil = <A>(
        outcome: () => Effect.Effect<A, Error> | undefined,
        timeoutMs: number,
        late: string
      ): Effect.Effect<A, Error> =>
        Effect.callback<A, Error>((resume) => {
          const check = () => {
            const settled = outcome()
            if (settled === undefined) return
            done()
            resume(settled)
          }
          const timer = setTimeout(() => {
            done()
            resume(Effect.fail(new Error(`${late}\n${describe()}`)))
          }, timeoutMs)
          const done = () => {
            clearTimeout(timer)
            waiters.delete(check)
          }
          waiters.add(check)
          check()
          return Effect.sync(done)
        })
      const program: Program = {
        child,
        lines,
        stderr: () => errors,
        line: (pattern, timeoutMs = 15_000) =>
          waitUntil(
            () => {
              const found = lines.find((line) => pattern.test(line))
              if (found !== undefined) return Effect.succeed(found)
              if (exit === undefined) return undefined
              return Effect.fail(new Error(`exited (${exit.code ?? exit.signal}) without ${pattern}\n${describe()}`))
            },
            timeoutMs,
            `no line ${pattern} within ${timeoutMs} ms`
          ),
        type: (line) => Effect.sync(() => void child.stdin.write(`${line}\n`)),
        exited: (timeoutMs = 15_000) =>
          waitUntil(
            () => exit === undefined ? undefined : Effect.succeed(exit),
            timeoutMs,
            `still running after ${timeoutMs} ms`
          )
      }
      return program
    }),
    ({ child }) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )

/** `user|id` from a console's `* online as user|id` line. */
export const onlineAs = (program: Program) =>
  Effect.map(program.line(/^\* online as /), (line) => line.slice("* online as ".length))
