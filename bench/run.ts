/**
 * Benchmark runner: our server against the hand-written `ws` baseline, in the same run.
 *
 *   npx tsx bench/run.ts [smoke|quick|full] [--only case1,case2] [--repeat n] [--measure ms] [--cpu-prof]
 *     [--servers ours,baseline]   (two of: ours, ours-limited, ours-limited-redis, baseline, baseline-coalesce;
 *                                  ours-limited is ours with its rate limiter on, ours-limited-redis the same with
 *                                  the cluster's rate-limit store on a redis-server of the run's own, see
 *                                  bench/README.md)
 *     [--rooms n]   (rooms per peer in the `rooms-*` cases, which are then named `rooms-<n>`)
 *
 * Every case starts a fresh server process (pinned to CPU 0 with `taskset` when it exists) and a fresh generator
 * process (pinned to CPU 1), both on 127.0.0.1. The servers alternate order from case to case and repetition to
 * repetition. At the end it prints our/baseline ratios (medians over repetitions) and writes every raw result to
 * bench/results/. `smoke` is a few seconds of tiny cases that proves the benchmark still works: no timing claims,
 * exit code 1 if any case fails. `--cpu-prof` writes V8 CPU profiles of our servers (`--cpu-prof-all`: of every
 * server) to bench/results/prof/, named after the server (read them with `npx tsx bench/profile.ts <file>`).
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { benchDir, build } from "./build.js"
import type { Result } from "./generator.js"
import { startRedis } from "./redis.js"
import { metricInfo, type Mode, onDemand, serverSetup, type Spec, specs } from "./scenarios.js"
import { cpuMillis, median, round, systemBusyMillis, table } from "./stats.js"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? undefined : args[i + 1]
}
const mode: Mode = args[0] === "smoke" || args[0] === "full" ? args[0] : "quick"
const only = flag("only")?.split(",")
const repeat = Number(flag("repeat") ?? (mode === "full" ? 3 : mode === "quick" ? 2 : 1))
const profileAll = args.includes("--cpu-prof-all")
const cpuProf = profileAll || args.includes("--cpu-prof")
const resultsDir = Path.join(benchDir, "results")
const profDir = Path.join(resultsDir, "prof")

const hasTaskset = spawnSync("taskset", ["-V"]).status === 0 && Os.cpus().length >= 2
const pin = (cpu: number): Array<string> => (hasTaskset ? ["taskset", "-c", String(cpu)] : [])

/**
 * On a shared machine, waits (up to `limitMs`) for a quarter second in which other processes use less than a third
 * of a core, so that cases start on a quiet machine when there is one. What others used during each measurement
 * is reported anyway (`otherCpuUtil`).
 */
const waitForQuiet = async (limitMs: number): Promise<void> => {
  const deadline = Date.now() + limitMs
  while (Date.now() < deadline) {
    const before = systemBusyMillis()
    await new Promise((resolve) => setTimeout(resolve, 250))
    if ((systemBusyMillis() - before) / 250 < 0.33) return
  }
}

/**
 * A server is still busy for a moment after it prints its listening line (the end of module compilation, a first
 * garbage collection). Waits (up to `limitMs`) for 200 ms in which it used under 5% of a core, so that a case
 * measures the server at work, not the tail of its start, whichever server it is.
 */
const waitForIdle = async (pid: number, limitMs: number): Promise<void> => {
  const deadline = Date.now() + limitMs
  while (Date.now() < deadline) {
    const before = cpuMillis(pid)
    await new Promise((resolve) => setTimeout(resolve, 200))
    if (cpuMillis(pid) - before < 10) return
  }
}

interface ServerKind {
  readonly label: string
  readonly file: string
  readonly env: Record<string, string>
}

interface Running {
  readonly pid: number
  readonly port: number
  readonly stop: () => Promise<void>
}

/** Starts a server bundle on an ephemeral loopback port; resolves once it prints its `listening` line. */
const startServer = (
  server: ServerKind,
  env: Record<string, string>,
  profile: boolean,
  flags: ReadonlyArray<string>
): Promise<Running> =>
  new Promise((resolve, reject) => {
    const { file } = server
    const nodeFlags = profile
      ? [
        ...flags,
        "--cpu-prof",
        "--cpu-prof-dir",
        profDir,
        "--cpu-prof-name",
        `${server.label}-${Date.now()}.cpuprofile`
      ]
      : flags
    const [cmd, ...rest] = [...pin(0), process.execPath, ...nodeFlags, file, "0"]
    const child = spawn(cmd!, rest, {
      env: { ...process.env, ...env, HOST: "127.0.0.1", PORT: "0" },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let buffered = ""
    let started = false
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${file} did not print its listening line within 20 s`))
    }, 20_000)
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    child.once("exit", (code) => {
      if (!started) {
        clearTimeout(timer)
        reject(new Error(`${file} exited with ${code} before listening`))
      }
    })
    // Keeps reading after start so a chatty server never blocks on a full pipe.
    child.stdout.on("data", (chunk: Buffer) => {
      if (started) return
      buffered += chunk.toString()
      for (const line of buffered.split("\n")) {
        if (!line.startsWith("{")) continue
        try {
          const info = JSON.parse(line) as { readonly listening?: number; readonly pid?: number }
          if (typeof info.listening !== "number") continue
          started = true
          clearTimeout(timer)
          resolve({
            pid: child.pid ?? info.pid ?? 0,
            port: info.listening,
            stop: async () => {
              child.kill("SIGTERM")
              const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
              await exited
              clearTimeout(killer)
            }
          })
        } catch {
          // not the line we wait for
        }
      }
    })
  })

const runGenerator = (file: string, label: string, server: Running, spec: Spec): Promise<Result> =>
  new Promise((resolve) => {
    const [cmd, ...rest] = [
      ...pin(1),
      process.execPath,
      file,
      "--url",
      `ws://127.0.0.1:${server.port}/`,
      "--pid",
      String(server.pid),
      "--server",
      label,
      "--spec",
      JSON.stringify(spec)
    ]
    const child = spawn(cmd!, rest, { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString()
    })
    const killer = setTimeout(() => child.kill("SIGKILL"), spec.limitMs + 15_000)
    child.once("exit", (code) => {
      clearTimeout(killer)
      process.stdout.write(out.split("\n").filter((l) => !l.startsWith("{\"scenario\"")).join("\n"))
      const line = out.split("\n").find((l) => l.startsWith("{\"scenario\""))
      if (line !== undefined) return resolve(JSON.parse(line) as Result)
      resolve({
        scenario: spec.name,
        server: label,
        ok: false,
        error: `generator exited with ${code} without a result`,
        metrics: {},
        counts: {},
        wallMs: 0
      })
    })
  })

/**
 * Each server's best run (highest for "higher" metrics, lowest for "lower"). On a machine that drifts between
 * speed modes (seen here: both servers ran about 15% slower in some windows than in others), the ratio of the
 * best runs compares the servers under the same conditions; the ratio of medians depends on which runs landed in
 * a slow window.
 */
const best = (xs: ReadonlyArray<number>, better: string): number => {
  const finite = xs.filter(Number.isFinite)
  if (finite.length === 0 || (better !== "higher" && better !== "lower")) return Number.NaN
  return better === "higher" ? Math.max(...finite) : Math.min(...finite)
}

/** Medians of two runs are means: keep three significant digits at most. */
const show = (
  x: number
): string => (Number.isFinite(x) ? String(Math.abs(x) >= 100 ? Math.round(x) : Number(x.toPrecision(3))) : "-")

const lockFile = Path.join(resultsDir, "run.lock")

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Two benchmark runs at once would measure each other: a run waits (up to `limitMs`) for another live run to
 * finish, and takes over the lock of a run that died.
 */
const acquireLock = async (limitMs: number): Promise<void> => {
  const deadline = Date.now() + limitMs
  let told = false
  while (true) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: "wx" })
      process.once("exit", () => rmSync(lockFile, { force: true }))
      return
    } catch {
      const holder = Number(readFileSync(lockFile, "utf8"))
      if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
        rmSync(lockFile, { force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`another benchmark run (pid ${holder}) is still going`)
      if (!told) process.stdout.write(`waiting for the benchmark run of pid ${holder} to finish\n`)
      told = true
      await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
  }
}

const main = async (): Promise<void> => {
  mkdirSync(profDir, { recursive: true })
  await acquireLock(15 * 60_000)
  const wanted = (flag("servers") ?? "ours,baseline").split(",").slice(0, 2)
  // More rooms per peer than our server allows by default raises its limit, so that the case can run at all.
  const rooms = flag("rooms") === undefined ? undefined : Number(flag("rooms"))
  if (rooms !== undefined && !(Number.isInteger(rooms) && rooms >= 2)) throw new Error("--rooms takes a number >= 2")
  const oursEnv: Record<string, string> = rooms === undefined ? {} : { BENCH_MAX_ROOMS: String(rooms) }
  // `ours-limited` is our server with its rate limiter on (a bucket of BENCH_RATE_LIMIT frames, by default a million:
  // never refusing in any case); next to it, `ours` runs with the limiter off whatever BENCH_RATE_LIMIT says, so that
  // one run compares the two.
  const limited = process.env["BENCH_RATE_LIMIT"] ?? "1000000"
  const oursRateLimit = wanted.some((name) => name.startsWith("ours-limited")) ? "0" : process.env["BENCH_RATE_LIMIT"]
  // `ours-limited-redis`: the buckets in `RedisRateLimit` (symple-ts/redis) on a redis-server of this run, reconciled
  // in the background; the server is a single node otherwise (no broker), so that against `ours-limited` only the
  // store differs.
  const redis = wanted.includes("ours-limited-redis") ? await startRedis() : undefined
  // Stopped when the run ends (its process would keep the runner alive), or if the run fails.
  if (redis !== undefined) process.once("exit", redis.stop)
  const wantsOurs = wanted.some((name) => name.startsWith("ours"))
  const { built, skipped } = await build({
    generator: "generator.ts",
    baseline: "baseline-server.ts",
    ...(wantsOurs ? { ours: "servers/ours.ts" } : {})
  })
  for (const [name, reason] of Object.entries(skipped)) process.stdout.write(`(${name} not built: ${reason})\n`)
  // A run that asked for our server and measured the baseline against itself instead has not measured ours: it
  // still runs (the noise of the machine is worth seeing), but it fails, so that `smoke` in CI cannot pass that way.
  const unbuilt = wantsOurs && built["ours"] === undefined
  const generator = built["generator"]
  const baseline = built["baseline"]
  if (generator === undefined || baseline === undefined) throw new Error("the generator and the baseline must build")
  const kind = (name: string): ServerKind | undefined => {
    switch (name) {
      case "ours":
        return built["ours"] === undefined ? undefined : {
          label: "ours",
          file: built["ours"],
          env: oursRateLimit === undefined ? oursEnv : { ...oursEnv, BENCH_RATE_LIMIT: oursRateLimit }
        }
      case "ours-limited":
        return built["ours"] === undefined
          ? undefined
          : { label: name, file: built["ours"], env: { ...oursEnv, BENCH_RATE_LIMIT: limited } }
      case "ours-limited-redis":
        return built["ours"] === undefined || redis === undefined ? undefined : {
          label: name,
          file: built["ours"],
          env: { ...oursEnv, BENCH_RATE_LIMIT: limited, BENCH_RATE_LIMIT_REDIS: `redis://127.0.0.1:${redis.port}` }
        }
      case "baseline":
        return { label: "baseline", file: baseline, env: {} }
      case "baseline-coalesce":
        return { label: name, file: baseline, env: { BASELINE_COALESCE: "1" } }
      default:
        throw new Error(`unknown server ${name} (ours, ours-limited, ours-limited-redis, baseline, baseline-coalesce)`)
    }
  }
  // Without our server, the baseline runs against itself: the ratio then shows the noise of the machine.
  const chosen = wanted.map(kind).filter((k): k is ServerKind => k !== undefined)
  while (chosen.length < 2) chosen.push({ label: "baseline", file: baseline, env: {} })
  const servers = chosen[0]!.label === chosen[1]!.label ?
    [{ ...chosen[0]!, label: `${chosen[0]!.label}-a` }, { ...chosen[1]!, label: `${chosen[1]!.label}-b` }] :
    chosen
  const [first, second] = [servers[0]!.label, servers[1]!.label]

  if (hasTaskset) spawnSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" })
  const measureMs = flag("measure")
  // Named with --only, a case outside the mode (one run on demand, see scenarios.ts) runs too.
  const inMode = specs(mode)
  const known = [...inMode, ...onDemand.filter((s) => !inMode.some((m) => m.name === s.name))]
  const cases = known.filter((s) => only === undefined ? inMode.includes(s) : only.includes(s.name)).map((
    s
  ): Spec => measureMs !== undefined && "measureMs" in s ? { ...s, measureMs: Number(measureMs) } : s).map((s): Spec =>
    rooms !== undefined && s.kind === "pingpong" && s.roomsPerPeer !== undefined
      ? { ...s, roomsPerPeer: rooms, name: `rooms-${rooms}` }
      : s
  )
  const machine = {
    date: new Date().toISOString(),
    mode,
    cpus: Os.cpus().length,
    cpuModel: Os.cpus()[0]?.model ?? "?",
    node: process.version,
    pinned: hasTaskset,
    loadavgAtStart: Os.loadavg().map((x) => round(x, 2)),
    // What each server label ran with (e.g. the rate limit of `ours-limited`).
    servers: Object.fromEntries(servers.map((s) => [s.label, s.env])),
    // The bundles are built from the working tree: uncommitted changes to src/server are part of what ran.
    commit: spawnSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).stdout?.trim() ?? "?",
    uncommittedServerFiles:
      (spawnSync("git", ["status", "--porcelain", "--", "src/server", "src/protocol"], { encoding: "utf8" }).stdout ??
        "")
        .split("\n").filter((l) => l !== "").length
  }
  process.stdout.write(`${JSON.stringify({ machine })}\n`)
  for (const server of servers) {
    if (!server.label.startsWith("ours")) continue
    const limit = server.env["BENCH_RATE_LIMIT"] ?? process.env["BENCH_RATE_LIMIT"] ?? "0"
    process.stdout.write(
      `${server.label} runs with rate limiting ${
        Number(limit) > 0 ? `on (bucket of ${limit} frames per peer, refilled at 10/s)` : "disabled"
      }${
        server.env["BENCH_RATE_LIMIT_REDIS"] === undefined
          ? ""
          : `, buckets in RedisRateLimit on ${server.env["BENCH_RATE_LIMIT_REDIS"]}`
      } (bench/servers/ours.ts)\n`
    )
  }
  for (const spec of cases) {
    const setup = serverSetup(spec)
    const said = [...setup.nodeFlags, ...Object.entries(setup.env).map(([k, v]) => `${k}=${v}`)]
    if (said.length > 0) process.stdout.write(`${spec.name}: servers started with ${said.join(" ")} (scenarios.ts)\n`)
  }

  const results: Array<Result> = []
  const started = Date.now()
  for (let rep = 0; rep < repeat; rep++) {
    for (const [i, spec] of cases.entries()) {
      const order = (i + rep) % 2 === 0 ? servers : [...servers].reverse()
      for (const server of order) {
        const profile = cpuProf && (profileAll || server.label.startsWith("ours"))
        let result: Result
        if (mode !== "smoke") await waitForQuiet(mode === "full" ? 3_000 : 750)
        try {
          const setup = serverSetup(spec)
          const running = await startServer(server, { ...server.env, ...setup.env }, profile, setup.nodeFlags)
          if (mode !== "smoke") await waitForIdle(running.pid, 3_000)
          try {
            result = await runGenerator(generator, server.label, running, spec)
          } finally {
            await running.stop()
          }
        } catch (e) {
          result = {
            scenario: spec.name,
            server: server.label,
            ok: false,
            error: e instanceof Error ? e.message : String(e),
            metrics: {},
            counts: {},
            wallMs: 0
          }
        }
        process.stdout.write(`${JSON.stringify(result)}\n\n`)
        results.push(result)
      }
    }
  }

  const rows: Array<Array<string>> = []
  for (const spec of cases) {
    const of = (label: string) => results.filter((r) => r.scenario === spec.name && r.server === label && r.ok)
    const a = of(first)
    const b = of(second)
    const keys = [...new Set([...a, ...b].flatMap((r) => Object.keys(r.metrics)))]
    for (const key of keys) {
      const ma = median(a.map((r) => r.metrics[key] ?? Number.NaN))
      const mb = median(b.map((r) => r.metrics[key] ?? Number.NaN))
      const better = metricInfo[key]?.better ?? "info"
      const ba = best(a.map((r) => r.metrics[key] ?? Number.NaN), better)
      const bb = best(b.map((r) => r.metrics[key] ?? Number.NaN), better)
      rows.push([
        spec.name,
        metricInfo[key]?.label ?? key,
        show(ma),
        show(mb),
        Number.isFinite(ma / mb) ? `${round(ma / mb, 2)}x` : "-",
        repeat > 1 && Number.isFinite(ba / bb) ? `${round(ba / bb, 2)}x` : "",
        better
      ])
    }
    const count = (rs: ReadonlyArray<Result>, key: string) =>
      round(median(rs.map((r) => r.counts[key] ?? Number.NaN)), 2)
    const context = (label: string, key: string, kind: string) =>
      rows.push([spec.name, label, show(count(a, key)), show(count(b, key)), "", "", kind])
    if (a.length + b.length > 0) {
      // Near 1, the generator's core was the limit: the server's throughput figure is then a lower bound.
      context("(generator CPU busy, fraction of one core)", "generatorCpuUtil", "info")
      context("(CPU used outside server and generator)", "otherCpuUtil", "noise")
    }
    const failed = results.filter((r) => r.scenario === spec.name && !r.ok)
    for (const f of failed) rows.push([spec.name, `FAILED on ${f.server}`, f.error ?? "?", "", "", "", ""])
  }
  process.stdout.write(
    `\n${table(["case", "metric", first, second, `${first}/${second}`, "best/best", "better"], rows)}\n\n` +
      `${mode} mode, ${repeat} repetition(s), ${round((Date.now() - started) / 1000, 0)} s, ` +
      `${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, ${machine.date}, commit ${machine.commit}` +
      `${
        machine.uncommittedServerFiles > 0
          ? ` + ${machine.uncommittedServerFiles} uncommitted files in src/server and src/protocol`
          : ""
      }` +
      `${hasTaskset ? ", server on CPU 0 and generator on CPU 1" : ", not pinned (no taskset)"}\n`
  )
  const file = Path.join(resultsDir, `${mode}-${machine.date.replace(/[:.]/g, "-")}.json`)
  writeFileSync(file, JSON.stringify({ machine, results }, null, 2))
  process.stdout.write(`raw results: ${Path.relative(process.cwd(), file)}\n`)
  if (cpuProf) {
    process.stdout.write(`profiles: ${Path.relative(process.cwd(), profDir)}/ (npx tsx bench/profile.ts <file>)\n`)
  }
  if (unbuilt) process.stdout.write("FAILED: our server (bench/servers/ours.ts) did not build, see above\n")
  process.exitCode = results.every((r) => r.ok) && !unbuilt ? 0 : 1
  redis?.stop()
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exitCode = 1
  // A redis-server of the run's own would keep the process alive.
  process.exit()
})
