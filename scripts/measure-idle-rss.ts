/**
 * Idle resident memory of the server as it is deployed, against the benchmark's baseline (a hand-written Symple
 * server on plain `ws`), in the same run:
 *
 * - `command`: the `symple-ts` command bundled as `npm run build` bundles it (every dependency inside, minified;
 *   `scripts/build-command.ts`), run as `node symple-ts.mjs serve`;
 * - `ours`: `bench/servers/ours.ts` bundled with its packages left in node_modules (how a program that imports the
 *   library and is built with its dependencies external runs);
 * - `baseline`: `bench/baseline-server.ts` bundled as the benchmark bundles it.
 *
 * Each is started on bare `node` on a free loopback port, waited for until idle (under 10 ms of CPU in 200 ms, as
 * the benchmark waits) and `--settle` ms more; then VmRSS and VmHWM (peak) are read from `/proc/<pid>/status` and
 * it is stopped with SIGTERM. The servers take turns, run after run. Linux only.
 *
 *   npx tsx scripts/measure-idle-rss.ts [checkout] [--runs 5] [--settle 2000] [--only command,baseline]
 *
 * `checkout` (default: this one) is the root of a symple-ts checkout with its own node_modules, e.g. another
 * worktree on another Effect version: its sources are bundled against its own packages (the command only when it
 * has `src/cli/main.ts`), so that the two can be compared on the same Node. The baseline is always this
 * checkout's. Nothing is written inside that checkout (the bundles go to a temporary directory whose
 * `node_modules` links to the checkout's).
 */
import * as esbuild from "esbuild"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { cpuMillis, median } from "../bench/stats.js"
import { commandOptions } from "./build-command.js"

const args = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(args[i + 1])
}
const positional = args.filter((a, i) => !a.startsWith("--") && !(args[i - 1] ?? "").startsWith("--"))
const here = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..")
const root = Path.resolve(positional[0] ?? here)
const runs = flag("runs", 5)
const settleMs = flag("settle", 2000)
const only = (() => {
  const i = args.indexOf("--only")
  return i < 0 ? undefined : args[i + 1]?.split(",")
})()

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** VmRSS and VmHWM of a process, in MiB. */
const memory = (pid: number): { readonly rss: number; readonly peak: number } => {
  const status = readFileSync(`/proc/${pid}/status`, "latin1")
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status)?.[1]) / 1024
  return { rss: field("VmRSS"), peak: field("VmHWM") }
}

interface Sample {
  readonly startMs: number
  readonly rss: number
  readonly peak: number
  readonly exit: string
}

/** A server to measure: how it is started. */
interface Target {
  readonly name: string
  readonly args: ReadonlyArray<string>
}

/** The line each server prints once it accepts connections. */
const isListening = (line: string) =>
  line.startsWith("{\"listening\"") || line.startsWith("Symple server listening on ")

const measure = (target: Target): Promise<Sample> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(process.execPath, [...target.args], {
      env: { ...process.env, HOST: "127.0.0.1", PORT: "0" },
      stdio: ["ignore", "pipe", "inherit"]
    })
    const exited = new Promise<string>((done) =>
      child.once("exit", (code, signal) => done(signal === null ? `code ${code}` : signal))
    )
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error("the server did not print its listening line within 20 s"))
    }, 20_000)
    let buffered = ""
    let listening = false
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString()
      if (!buffered.split("\n").some(isListening)) return
      listening = true
      child.stdout.off("data", onData)
      child.stdout.resume()
      clearTimeout(timer)
      const startMs = performance.now() - started
      const pid = child.pid!
      void (async () => {
        const deadline = Date.now() + 3_000
        while (Date.now() < deadline) {
          const before = cpuMillis(pid)
          await sleep(200)
          if (cpuMillis(pid) - before < 10) break
        }
        await sleep(settleMs)
        const { peak, rss } = memory(pid)
        child.kill("SIGTERM")
        const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
        const exit = await exited
        clearTimeout(killer)
        resolve({ startMs, rss, peak, exit })
      })().catch(reject)
    }
    child.stdout.on("data", onData)
    void exited.then((how) => {
      if (listening) return
      clearTimeout(timer)
      reject(new Error(`the server exited (${how}) before listening`))
    })
  })

const main = async (): Promise<void> => {
  const version = (name: string) =>
    (JSON.parse(readFileSync(Path.join(root, "node_modules", name, "package.json"), "utf8")) as { version: string })
      .version
  const dir = mkdtempSync(Path.join(Os.tmpdir(), "symple-idle-rss-"))
  try {
    symlinkSync(Path.join(root, "node_modules"), Path.join(dir, "node_modules"), "dir")
    // The benchmark's bundles: packages external, resolved from node_modules.
    const external = (entry: string, name: string) =>
      esbuild.build({
        entryPoints: [entry],
        outfile: Path.join(dir, name),
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node22",
        packages: "external",
        logLevel: "silent"
      })
    const targets: Array<Target> = []
    const command = Path.join(root, "src", "cli", "main.ts")
    if (existsSync(command)) {
      await esbuild.build({ ...(await commandOptions(command)), outfile: Path.join(dir, "symple-ts.mjs") })
      targets.push({
        name: "command",
        args: [Path.join(dir, "symple-ts.mjs"), "serve", "--host", "127.0.0.1", "--port", "0"]
      })
    }
    await external(Path.join(root, "bench", "servers", "ours.ts"), "ours.mjs")
    targets.push({ name: "ours", args: [Path.join(dir, "ours.mjs"), "0"] })
    await external(Path.join(here, "bench", "baseline-server.ts"), "baseline.mjs")
    targets.push({ name: "baseline", args: [Path.join(dir, "baseline.mjs"), "0"] })
    const measured = targets.filter((target) => only === undefined || only.includes(target.name))
    process.stdout.write(
      `${root}: effect ${version("effect")}, node ${process.version}, ${runs} run(s) each of ${
        measured.map((t) => t.name).join(", ")
      }, ${settleMs} ms after idle\n`
    )
    const samples = new Map<string, Array<Sample>>(measured.map((t) => [t.name, []]))
    for (let i = 0; i < runs; i++) {
      // Taking turns, in a different order each run, so that a machine that drifts affects them alike.
      const order = i % 2 === 0 ? measured : [...measured].reverse()
      for (const target of order) {
        const sample = await measure(target)
        samples.get(target.name)!.push(sample)
        process.stdout.write(
          `run ${i + 1} ${target.name}: RSS ${sample.rss.toFixed(1)} MiB, peak ${sample.peak.toFixed(1)} MiB, ` +
            `listening after ${sample.startMs.toFixed(0)} ms, SIGTERM -> ${sample.exit}\n`
        )
      }
    }
    const rss = (name: string) => median((samples.get(name) ?? []).map((s) => s.rss))
    for (const [name, list] of samples) {
      process.stdout.write(
        `median ${name}: idle RSS ${rss(name).toFixed(1)} MiB, peak ${
          median(list.map((s) => s.peak)).toFixed(1)
        } MiB, ` +
          `listening after ${median(list.map((s) => s.startMs)).toFixed(0)} ms\n`
      )
    }
    if (samples.has("baseline")) {
      for (const name of samples.keys()) {
        if (name !== "baseline") {
          process.stdout.write(`${name}/baseline idle RSS: ${(rss(name) / rss("baseline")).toFixed(2)}x\n`)
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exitCode = 1
})
