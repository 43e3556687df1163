/**
 * Measurement helpers shared by the generator and the runner: a fixed-size latency histogram and readers for a
 * server process's CPU time and resident memory in /proc.
 */
import { readFileSync } from "node:fs"

/** Relative width of one histogram bucket: quantiles are exact to about 1%. */
const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)
/** Buckets for 1 µs .. about 2 minutes, so a recorded value never needs memory beyond this array. */
const BUCKETS = Math.ceil(Math.log(120e6) / LOG_GROWTH) + 1

/** Log-bucketed histogram of microsecond values: constant memory however many millions of samples arrive. */
export class Histogram {
  readonly counts = new Float64Array(BUCKETS)
  count = 0
  max = 0

  record(micros: number): void {
    const v = micros < 1 ? 1 : micros
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v) / LOG_GROWTH))
    this.counts[i] = (this.counts[i] ?? 0) + 1
    this.count++
    if (v > this.max) this.max = v
  }

  /** Quantile in microseconds (the upper edge of the bucket that holds it), 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] ?? 0
      if (seen >= rank) return Math.min(this.max, Math.pow(GROWTH, i + 1))
    }
    return this.max
  }
}

/** Ticks per second of utime/stime in /proc/<pid>/stat; 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100

/** User + system CPU time of a whole process (all its threads) in milliseconds, or NaN where /proc is missing. */
export const cpuMillis = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    // The command name may hold spaces or parentheses: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return ((utime + stime) * 1000) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/** CPU time spent by every process on the machine (all cores, idle and iowait excluded) in milliseconds. */
export const systemBusyMillis = (): number => {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0] ?? ""
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
    const busy = ticks.reduce((a, b) => a + b, 0) - (ticks[3] ?? 0) - (ticks[4] ?? 0)
    return (busy * 1000) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/** Resident set size of a process in KiB (VmRSS), or NaN where /proc is missing. */
export const rssKiB = (pid: number): number => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1")
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return match?.[1] === undefined ? Number.NaN : Number(match[1])
  } catch {
    return Number.NaN
  }
}

export const round = (x: number, digits = 1): number => {
  if (!Number.isFinite(x)) return x
  const f = Math.pow(10, digits)
  return Math.round(x * f) / f
}

export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A plain text table with right-aligned columns after the first. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

/** What a server reports on `GET /bench/memory`: `process.memoryUsage()` after a full collection. */
export interface CollectedMemory {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly arrayBuffers: number
}

/** Path of the memory report both benchmark servers serve when the process runs with `--expose-gc`. */
export const memoryPath = "/bench/memory"

/** Whether this process can collect garbage on demand (it runs with `--expose-gc`). */
export const canCollect = (): boolean => typeof (globalThis as { readonly gc?: unknown }).gc === "function"

/**
 * `process.memoryUsage()` after full collections, or undefined when the process does not run with `--expose-gc`.
 * Two collections: the first may leave what only became garbage while it ran (weak references cleared, finalizers).
 */
export const collectedMemory = (): CollectedMemory | undefined => {
  const gc = (globalThis as { readonly gc?: () => void }).gc
  if (gc === undefined) return undefined
  gc()
  gc()
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage()
  return { rss, heapUsed, heapTotal, external, arrayBuffers }
}

/** The soft limit on open files of a process (Linux's `/proc/<pid>/limits`), or NaN where it cannot be read. */
export const openFileLimit = (pid: number | "self" = "self"): number => {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "latin1").split("\n").find((l) => l.startsWith("Max open files"))
    return Number(line?.slice("Max open files".length).trim().split(/\s+/)[0] ?? Number.NaN)
  } catch {
    return Number.NaN
  }
}
