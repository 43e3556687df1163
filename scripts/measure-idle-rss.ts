/**
 * Idle resident memory of the built server: bundles `bench/servers/ours.ts` the way the benchmark does (esbuild,
 * packages external), starts it on bare `node` on a free loopback port, waits until it is idle (under 10 ms of CPU
 * in 200 ms, as the benchmark waits), lets it sit `--settle` ms more, then reads VmRSS and VmHWM (peak) from
 * `/proc/<pid>/status` and stops it with SIGTERM. Linux only.
 *
 *   npx tsx scripts/measure-idle-rss.ts [checkout] [--runs 5] [--settle 2000]
 *
 * `checkout` (default: this one) is the root of a symple-ts checkout with its own node_modules, e.g. another
 * worktree on another Effect version: its `bench/servers/ours.ts` is bundled against its own packages, so that the
 * two can be compared on the same Node. Nothing is written inside that checkout (the bundle goes to a temporary
 * directory whose `node_modules` links to the checkout's).
 */
import * as esbuild from "esbuild"
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { cpuMillis, median } from "../bench/stats.js"

const args = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(args[i + 1])
}
const positional = args.filter((a, i) => !a.startsWith("--") && !(args[i - 1] ?? "").startsWith("--"))
const root = Path.resolve(positional[0] ?? Path.join(Path.dirname(fileURLToPath(import.meta.url)), ".."))
const runs = flag("runs", 5)
const settleMs = flag("settle", 2000)

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

const measure = (file: string): Promise<Sample> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(process.execPath, [file, "0"], {
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
      if (!buffered.split("\n").some((line) => line.startsWith("{\"listening\""))) return
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
    const file = Path.join(dir, "ours.mjs")
    await esbuild.build({
      entryPoints: [Path.join(root, "bench", "servers", "ours.ts")],
      outfile: file,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      packages: "external",
      logLevel: "silent"
    })
    process.stdout.write(
      `${root}: effect ${version("effect")}, node ${process.version}, ${runs} run(s), ${settleMs} ms after idle\n`
    )
    const samples: Array<Sample> = []
    for (let i = 0; i < runs; i++) {
      const sample = await measure(file)
      samples.push(sample)
      process.stdout.write(
        `run ${i + 1}: RSS ${sample.rss.toFixed(1)} MiB, peak ${sample.peak.toFixed(1)} MiB, listening after ` +
          `${sample.startMs.toFixed(0)} ms, SIGTERM -> ${sample.exit}\n`
      )
    }
    process.stdout.write(
      `median: idle RSS ${median(samples.map((s) => s.rss)).toFixed(1)} MiB, peak ${
        median(samples.map((s) => s.peak)).toFixed(1)
      } MiB, listening after ${median(samples.map((s) => s.startMs)).toFixed(0)} ms\n`
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exitCode = 1
})
