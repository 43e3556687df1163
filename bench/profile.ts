/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. from `bench/run.ts --cpu-prof`): top functions by self time
 * and by inclusive time, and time per area (src/server, effect, effect/http, effect/socket, ws, node, GC...).
 * Positions inside an esbuild bundle (or a package's own dist) are mapped back to the original file and line
 * through its source map.
 *
 *   npx tsx bench/profile.ts <file.cpuprofile> [--top 25] [--timeline] [--from ms] [--to ms]
 *
 * `--timeline` prints busy time per 100 ms since the profile started (startup, measurement and teardown show up as
 * separate bursts); `--from`/`--to` keep only the samples in that interval, e.g. a case's measurement window.
 */
import { existsSync, readFileSync } from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { round, table } from "./stats.js"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

interface SourceMap {
  readonly sources: ReadonlyArray<string>
  readonly mappings: string
  readonly sourceRoot?: string
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const digit = new Map([...BASE64].map((c, i) => [c, i]))

/** Generated line -> sorted segments [generatedColumn, sourceIndex, sourceLine]. */
type Mappings = Array<Array<readonly [number, number, number]>>

const decodeMappings = (mappings: string): Mappings => {
  const lines: Mappings = []
  let source = 0
  let sourceLine = 0
  let sourceColumn = 0
  let name = 0
  for (const line of mappings.split(";")) {
    const segments: Array<readonly [number, number, number]> = []
    let column = 0
    for (const segment of line.split(",")) {
      if (segment === "") continue
      const values: Array<number> = []
      let value = 0
      let shift = 0
      for (const c of segment) {
        const d = digit.get(c) ?? 0
        value += (d & 31) << shift
        if (d & 32) shift += 5
        else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1)
          value = 0
          shift = 0
        }
      }
      column += values[0] ?? 0
      if (values.length >= 4) {
        source += values[1]!
        sourceLine += values[2]!
        sourceColumn += values[3]!
        if (values.length >= 5) name += values[4]!
        segments.push([column, source, sourceLine])
      }
    }
    lines.push(segments)
  }
  return lines
}

const mapsByUrl = new Map<string, { readonly map: SourceMap; readonly lines: Mappings; readonly dir: string } | null>()

/** `file:line` of a profile position, through the bundle's source map when there is one. */
const locate = (frame: CallFrame): string => {
  if (frame.url === "") return ""
  if (!frame.url.startsWith("file://")) return `${frame.url}:${frame.lineNumber + 1}`
  const file = fileURLToPath(frame.url)
  let entry = mapsByUrl.get(frame.url)
  if (entry === undefined) {
    entry = null
    if (existsSync(`${file}.map`)) {
      const map = JSON.parse(readFileSync(`${file}.map`, "utf8")) as SourceMap
      entry = { map, lines: decodeMappings(map.mappings), dir: Path.dirname(file) }
    }
    mapsByUrl.set(frame.url, entry)
  }
  const relative = (p: string) => Path.relative(process.cwd(), p)
  if (entry === null) return `${relative(file)}:${frame.lineNumber + 1}`
  const segments = entry.lines[frame.lineNumber] ?? []
  let found: readonly [number, number, number] | undefined
  for (const s of segments) {
    if (s[0] <= frame.columnNumber) found = s
    else break
  }
  found ??= segments[0]
  if (found === undefined) return `${relative(file)}:${frame.lineNumber + 1}`
  const source = entry.map.sources[found[1]] ?? "?"
  return `${relative(Path.resolve(entry.dir, entry.map.sourceRoot ?? "", source))}:${found[2] + 1}`
}

const area = (location: string, name: string): string => {
  if (name === "(garbage collector)") return "GC"
  if (name === "(idle)" || name === "(program)") return name
  // Effect 4 ships what @effect/platform held (HTTP, sockets) in effect itself: kept apart from the core runtime.
  const effect = /node_modules\/effect\/(?:dist|src)\/(http|socket)\//.exec(location)
  if (effect?.[1] !== undefined) return `effect/${effect[1]}`
  if (location.includes("node_modules/effect/")) return "effect"
  if (location.includes("node_modules/@effect/")) return "@effect/platform-node*"
  if (location.includes("node_modules/ws/")) return "ws"
  const src = /(?:^|\/)(src\/[a-z]+)\//.exec(location)
  if (src?.[1] !== undefined) return src[1]
  if (location.startsWith("node:")) return "node internals"
  if (location === "") return "native / V8"
  return "other"
}

const main = (): void => {
  const args = process.argv.slice(2)
  const file = args.find((a) => !a.startsWith("--"))
  if (file === undefined) throw new Error("usage: npx tsx bench/profile.ts <file.cpuprofile> [--top 25]")
  const topIndex = args.indexOf("--top")
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25
  const option = (name: string): number | undefined => {
    const at = args.indexOf(name)
    return at >= 0 ? Number(args[at + 1]) : undefined
  }
  const from = option("--from") ?? 0
  const to = option("--to") ?? Infinity
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile

  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const key = (n: ProfileNode) => {
    const location = locate(n.callFrame)
    const name = n.callFrame.functionName === "" ? "(anonymous)" : n.callFrame.functionName
    return { id: `${name}\u0000${location}`, name, location }
  }
  const keys = new Map(profile.nodes.map((n) => [n.id, key(n)]))

  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const areas = new Map<string, number>()
  let all = 0
  let idle = 0
  let at = 0
  const timeline: Array<number> = []
  profile.samples.forEach((sample, i) => {
    at += (profile.timeDeltas[i] ?? 0) / 1000
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000
    const k = keys.get(sample)
    if (k === undefined) return
    if (k.name !== "(idle)") {
      const bucket = Math.floor(at / 100)
      timeline[bucket] = (timeline[bucket] ?? 0) + dt
    }
    if (at < from || at >= to) return
    all += dt
    if (k.name === "(idle)") idle += dt
    self.set(k.id, (self.get(k.id) ?? 0) + dt)
    const a = area(k.location, k.name)
    areas.set(a, (areas.get(a) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const kk = keys.get(id)
      if (kk === undefined || seen.has(kk.id)) continue
      seen.add(kk.id)
      total.set(kk.id, (total.get(kk.id) ?? 0) + dt)
    }
  })
  const busy = all - idle
  const pct = (ms: number) => `${round((100 * ms) / busy, 1)}%`
  const label = (id: string) => {
    const at = id.indexOf("\u0000")
    return [id.slice(0, at), id.slice(at + 1)] as const
  }
  if (args.includes("--timeline")) {
    process.stdout.write(
      `busy ms per 100 ms:\n${Array.from(timeline, (ms, i) => `${i * 100}\t${round(ms ?? 0, 0)}`).join("\n")}\n\n`
    )
  }
  process.stdout.write(`${file}: ${round(all, 0)} ms sampled, ${round(busy, 0)} ms busy (percentages of busy)\n\n`)
  process.stdout.write(
    `${
      table(
        ["area", "self ms", "self"],
        [...areas.entries()].filter(([a]) => a !== "(idle)").sort((a, b) => b[1] - a[1]).map((
          [a, ms]
        ) => [a, String(round(ms, 0)), pct(ms)])
      )
    }\n\n`
  )
  const bySelf = [...self.entries()].filter(([id]) => !id.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(
    0,
    top
  )
  process.stdout.write(
    `${
      table(
        ["function", "location", "self ms", "self", "total"],
        bySelf.map(([id, ms]) => [...label(id), String(round(ms, 0)), pct(ms), pct(total.get(id) ?? 0)])
      )
    }\n\n`
  )
  const ownCode = [...total.entries()].filter(([id]) => id.includes("\u0000src/")).sort((a, b) => b[1] - a[1]).slice(
    0,
    top
  )
  process.stdout.write(
    `Inclusive time of functions in src/:\n${
      table(
        ["function", "location", "total", "self"],
        ownCode.map(([id, ms]) => [...label(id), pct(ms), pct(self.get(id) ?? 0)])
      )
    }\n`
  )
}

main()
