/**
 * Load generator: runs one benchmark case against a Symple server in a worker thread and prints one JSON line
 * (`{"scenario":...}`) followed by a readable table.
 *
 *   node generator.mjs --url ws://127.0.0.1:4500 --pid <server pid> --server <label> (--spec '<json>' | --case <name> [--mode quick])
 *
 * The server pid is only used to read its CPU time and RSS from /proc. Clients send `auth` right after the socket
 * opens and read routed frames by scanning bytes for a sequence key, not by JSON.parse, so that the generator
 * costs as little as possible next to the server it measures.
 */
import { fileURLToPath } from "node:url"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"
import { WebSocket } from "ws"
import {
  type ConnectSpec,
  type FanoutSpec,
  type Mode,
  type PingPongSpec,
  type Spec,
  specs,
  type StormSpec
} from "./scenarios.js"
import { cpuMillis, Histogram, round, rssKiB, systemBusyMillis, table } from "./stats.js"

export interface Input {
  readonly url: string
  readonly pid: number
  readonly server: string
  readonly spec: Spec
}

export interface Result {
  readonly scenario: string
  readonly server: string
  readonly ok: boolean
  readonly error?: string | undefined
  readonly metrics: Record<string, number>
  /** Counts behind the figures (deliveries, errors, lost frames...), for checking the run rather than comparing. */
  readonly counts: Record<string, number>
  readonly wallMs: number
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

/** Key of the sequence number the generator puts in every routed frame it sends. */
const SEQ_KEY = Buffer.from("\"bq\":")
const FROM_KEY = Buffer.from("\"from\":\"")
const QUOTE = 0x22

/** The sequence number in a routed frame, or -1 when the frame carries none (presence, acks...). */
const readSeq = (buf: Buffer): number => {
  const at = buf.indexOf(SEQ_KEY)
  if (at < 0) return -1
  let n = 0
  let i = at + SEQ_KEY.length
  for (; i < buf.length; i++) {
    const c = buf[i]!
    if (c < 0x30 || c > 0x39) break
    n = n * 10 + (c - 0x30)
  }
  return i === at + SEQ_KEY.length ? -1 : n
}

/** The `from` address of a frame, or undefined. */
const readFrom = (buf: Buffer): string | undefined => {
  const at = buf.indexOf(FROM_KEY)
  if (at < 0) return undefined
  const start = at + FROM_KEY.length
  const end = buf.indexOf(QUOTE, start)
  return end < 0 ? undefined : buf.toString("latin1", start, end)
}

interface Client {
  readonly ws: WebSocket
  id: string
  address: string
  frames: number
  onData: (buf: Buffer) => void
}

const failures = { closed: 0, errors: 0, firstError: "" }

const noteError = (message: string): void => {
  failures.errors++
  if (failures.firstError === "") failures.firstError = message
}

let closing = false

/** Opens a socket, authenticates, and resolves on `welcome`; later frames go to `onData`. */
const connect = (
  url: string,
  auth: { readonly user: string; readonly rooms?: ReadonlyArray<string> },
  onData: (client: Client, buf: Buffer) => void = () => {}
): Promise<Client> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true })
    const client: Client = { ws, id: "", address: "", frames: 0, onData: (buf) => onData(client, buf) }
    let welcomed = false
    ws.on("open", () => ws.send(JSON.stringify({ type: "auth", ...auth })))
    ws.on("message", (data: Buffer) => {
      client.frames++
      if (welcomed) return client.onData(data)
      const frame = JSON.parse(data.toString("utf8")) as {
        readonly type?: unknown
        readonly peer?: { readonly id?: unknown; readonly user?: unknown }
        readonly message?: unknown
      }
      if (frame.type === "welcome" && typeof frame.peer?.id === "string") {
        welcomed = true
        client.id = frame.peer.id
        client.address = `${String(frame.peer.user)}|${frame.peer.id}`
        resolve(client)
      } else {
        reject(new Error(`expected welcome, got ${data.toString("utf8").slice(0, 200)}`))
      }
    })
    ws.on("error", (e) => {
      if (!welcomed) reject(e)
      else if (!closing) noteError(`socket error: ${e.message}`)
    })
    ws.on("close", (code, reason) => {
      if (!welcomed) reject(new Error(`closed before welcome: ${code} ${reason.toString()}`))
      else if (!closing) {
        failures.closed++
        noteError(`server closed a client: ${code} ${reason.toString()}`)
      }
    })
  })

/** Runs `task(i)` for i in 0..n-1 with at most `concurrency` in flight; results in index order. */
const pool = async <A>(n: number, concurrency: number, task: (i: number) => Promise<A>): Promise<Array<A>> => {
  const out = new Array<A>(n)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < n) {
      const i = next++
      out[i] = await task(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, lane))
  return out
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits until no client has received a frame for `quietMs` (presence after a mass connect), at most `limitMs`. */
const settle = async (clients: ReadonlyArray<Client>, quietMs = 200, limitMs = 15_000): Promise<void> => {
  const total = () => clients.reduce((n, c) => n + c.frames, 0)
  const deadline = performance.now() + limitMs
  let last = total()
  let quietSince = performance.now()
  while (performance.now() < deadline) {
    await sleep(25)
    const now = total()
    if (now !== last) {
      last = now
      quietSince = performance.now()
    } else if (performance.now() - quietSince >= quietMs) return
  }
}

const closeAll = (clients: ReadonlyArray<Client>): void => {
  closing = true
  for (const c of clients) c.ws.terminate()
}

/** The generator's own process, every thread included (process.cpuUsage() in a worker is not documented as such). */
const selfCpuMillis = (): number => cpuMillis(process.pid)

/**
 * CPU and wall clock of the server over a measurement window, plus the generator's own CPU and what the rest of
 * the machine used meanwhile (other processes on a shared machine are noise in every figure).
 */
const measureWindow = (pid: number) => {
  const cpu0 = cpuMillis(pid)
  const self0 = selfCpuMillis()
  const busy0 = systemBusyMillis()
  const t0 = performance.now()
  return () => {
    const cpuMs = cpuMillis(pid) - cpu0
    const wallMs = performance.now() - t0
    const generatorMs = selfCpuMillis() - self0
    const otherMs = Math.max(0, systemBusyMillis() - busy0 - cpuMs - generatorMs)
    return {
      cpuMs,
      wallMs,
      load: { generatorCpuUtil: round(generatorMs / wallMs, 2), otherCpuUtil: round(otherMs / wallMs, 2) }
    }
  }
}

const ms = (micros: number) => round(micros / 1000, 2)

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

type Outcome = Pick<Result, "metrics" | "counts"> & { readonly ok?: boolean; readonly error?: string }

const runConnect = async (input: Input, spec: ConnectSpec): Promise<Outcome> => {
  const rss0 = rssKiB(input.pid)
  const measure = measureWindow(input.pid)
  const clients = await pool(spec.connections, spec.connectConcurrency, (i) => connect(input.url, { user: `c${i}` }))
  const connected = measure()
  // Lets the server finish what each handshake left behind before its memory is read.
  await sleep(500)
  const rss1 = rssKiB(input.pid)
  const settled = measure()
  closeAll(clients)
  return {
    metrics: {
      connectsPerSec: round(spec.connections / (connected.wallMs / 1000), 0),
      rssPerConnKiB: round((rss1 - rss0) / spec.connections, 2),
      cpuPerConnUs: round((settled.cpuMs * 1000) / spec.connections, 1)
    },
    counts: {
      connections: spec.connections,
      rssBeforeKiB: rss0,
      rssAfterKiB: rss1,
      connectMs: round(connected.wallMs, 0),
      ...connected.load
    }
  }
}

/**
 * A peer's rooms for a ping-pong case: `roomsPerPeer - 2` rooms of its own (its personal room makes one more), then
 * the pair's room, last, where a scan of the rooms finds it latest. Own rooms have names of one length, alike up to
 * the end, which is what makes comparing two names cost the most.
 */
const pairRooms = (spec: PingPongSpec, user: string, pair: number): Array<string> => {
  const own = Math.max(0, (spec.roomsPerPeer ?? 2) - 2)
  const name = (k: number) => `alike-room-names-until-the-end-${user}-${String(k).padStart(4, "0")}`
  const rooms = Array.from({ length: own }, (_, k) => name(k))
  rooms.push(`pair${pair}`)
  return rooms
}

const runPingPong = async (input: Input, spec: PingPongSpec): Promise<Outcome> => {
  const hist = new Histogram()
  let measuring = false
  let running = true
  let deliveries = 0
  const sentAt = new Float64Array(spec.pairs)
  const seqs = new Uint32Array(spec.pairs)
  const peer = (user: string, i: number) => connect(input.url, { user, rooms: pairRooms(spec, user, i) })
  const as = await pool(spec.pairs, spec.connectConcurrency, (i) => peer(`a${i}`, i))
  const bs = await pool(spec.pairs, spec.connectConcurrency, (i) => peer(`b${i}`, i))
  await settle([...as, ...bs])
  // With `varyTo`, every message names its target with a user part of its own: routing must go by the id.
  const to = (client: Client, seq: number) => (spec.varyTo === true ? `x${seq}|${client.id}` : client.address)
  const ping = (i: number) => {
    sentAt[i] = performance.now()
    as[i]!.ws.send(`{"type":"message","to":"${to(bs[i]!, seqs[i]!)}","data":{"bq":${seqs[i]},"text":"ping"}}`)
  }
  for (let i = 0; i < spec.pairs; i++) {
    const a = as[i]!
    const b = bs[i]!
    b.onData = (buf) => {
      const seq = readSeq(buf)
      if (seq < 0) return
      if (measuring) deliveries++
      b.ws.send(`{"type":"message","to":"${to(a, seq)}","data":{"bq":${seq},"text":"pong"}}`)
    }
    a.onData = (buf) => {
      const seq = readSeq(buf)
      if (seq < 0) return
      if (seq !== seqs[i]) return noteError(`pair ${i}: expected seq ${seqs[i]}, got ${seq}`)
      if (measuring) {
        deliveries++
        hist.record((performance.now() - sentAt[i]!) * 1000)
      }
      seqs[i] = seq + 1
      if (running) ping(i)
    }
  }
  for (let i = 0; i < spec.pairs; i++) ping(i)
  await sleep(spec.warmupMs)
  measuring = true
  const seqsBefore = seqs.slice()
  const measure = measureWindow(input.pid)
  await sleep(spec.measureMs)
  measuring = false
  const m = measure()
  running = false
  // A message the server dropped stops its pair: the case fails instead of measuring the pairs left.
  const stalled = seqs.filter((seq, i) => seq === seqsBefore[i]).length
  closeAll([...as, ...bs])
  return {
    ...(stalled > 0 ? { ok: false, error: `${stalled} of ${spec.pairs} pairs made no round trip while measured` } : {}),
    metrics: {
      msgsPerSec: round(deliveries / (m.wallMs / 1000), 0),
      p50Ms: ms(hist.quantile(0.5)),
      p99Ms: ms(hist.quantile(0.99)),
      cpuPerDeliveryUs: round((m.cpuMs * 1000) / deliveries, 2),
      serverCpuUtil: round(m.cpuMs / m.wallMs, 2)
    },
    counts: {
      deliveries,
      roundTrips: hist.count,
      stalled,
      maxMs: ms(hist.max),
      ...(spec.roomsPerPeer === undefined ? {} : { roomsPerPeer: spec.roomsPerPeer }),
      ...m.load
    }
  }
}

interface Pending {
  readonly room: number
  readonly sentAt: number
  remaining: number
}

const runFanout = async (input: Input, spec: FanoutSpec): Promise<Outcome> => {
  const hist = new Histogram()
  const pending = new Map<number, Pending>()
  let measuring = false
  let running = true
  let deliveries = 0
  let sent = 0
  let nextSeq = 0
  const perMessage = spec.members - 1
  const text = "x".repeat(64)

  const onData = (room: number) => (client: Client, buf: Buffer) => {
    const seq = readSeq(buf)
    if (seq < 0) return
    const p = pending.get(seq)
    if (p === undefined || p.room !== room || client === senders[room]) {
      return noteError(`unexpected delivery of seq ${seq} to ${client.address}`)
    }
    if (measuring) {
      deliveries++
      hist.record((performance.now() - p.sentAt) * 1000)
    }
    if (--p.remaining === 0) {
      pending.delete(seq)
      if (running && spec.rate === undefined) send(room, performance.now())
    }
  }
  const send = (room: number, at: number) => {
    const seq = nextSeq++
    pending.set(seq, { room, sentAt: at, remaining: perMessage })
    sent++
    senders[room]!.ws.send(`{"type":"message","to":["room${room}"],"data":{"bq":${seq},"text":"${text}"}}`)
  }

  const members: Array<Array<Client>> = []
  for (let r = 0; r < spec.rooms; r++) {
    members.push(
      await pool(
        spec.members,
        spec.connectConcurrency,
        (m) => connect(input.url, { user: `r${r}m${m}`, rooms: [`room${r}`] }, onData(r))
      )
    )
  }
  const senders = members.map((room) => room[0]!)
  const all = members.flat()
  await settle(all)

  let ticker: NodeJS.Timeout | undefined
  if (spec.rate === undefined) {
    for (let r = 0; r < spec.rooms; r++) for (let w = 0; w < spec.window; w++) send(r, performance.now())
  } else {
    // Open loop: messages leave on a fixed schedule and latency counts from the scheduled time, so a server that
    // falls behind shows it in the latency instead of slowing the sender down (no coordinated omission).
    const messagesPerMs = spec.rate / perMessage / 1000
    const start = performance.now()
    let scheduled = 0
    ticker = setInterval(() => {
      // Message k is due at start + k / rate, so k + 1 messages are due once that moment has passed.
      const due = Math.floor((performance.now() - start) * messagesPerMs) + 1
      for (; scheduled < due; scheduled++) send(scheduled % spec.rooms, start + scheduled / messagesPerMs)
    }, 1)
  }
  await sleep(spec.warmupMs)
  measuring = true
  const measure = measureWindow(input.pid)
  await sleep(spec.measureMs)
  measuring = false
  const m = measure()
  running = false
  clearInterval(ticker)
  // Everything sent must arrive: a server that drops deliveries under load fails the case instead of looking fast.
  const drainUntil = performance.now() + Math.max(2_000, spec.measureMs)
  while (pending.size > 0 && performance.now() < drainUntil) await sleep(20)
  let lost = 0
  for (const p of pending.values()) lost += p.remaining
  closeAll(all)
  return {
    ...(lost > 0 ? { ok: false, error: `${lost} deliveries never arrived` } : {}),
    metrics: {
      deliveriesPerSec: round(deliveries / (m.wallMs / 1000), 0),
      p50Ms: ms(hist.quantile(0.5)),
      p99Ms: ms(hist.quantile(0.99)),
      cpuPerDeliveryUs: round((m.cpuMs * 1000) / deliveries, 2),
      serverCpuUtil: round(m.cpuMs / m.wallMs, 2)
    },
    counts: {
      deliveries,
      messagesSent: sent,
      lost,
      maxMs: ms(hist.max),
      ...(spec.rate === undefined ? {} : { targetRate: spec.rate }),
      ...m.load
    }
  }
}

const runStorm = async (input: Input, spec: StormSpec): Promise<Outcome> => {
  const others = spec.clients - 1
  let complete = 0
  let presences = 0
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const onData = (seen: Set<string>) => (client: Client, buf: Buffer) => {
    const from = readFrom(buf)
    presences++
    if (from === undefined || from === client.address || seen.has(from)) return
    seen.add(from)
    if (seen.size === others && ++complete === spec.clients) done()
  }
  const measure = measureWindow(input.pid)
  const clients = await pool(
    spec.clients,
    spec.connectConcurrency,
    (i) => connect(input.url, { user: `s${i}`, rooms: ["storm"] }, onData(new Set()))
  )
  await finished
  const m = measure()
  closeAll(clients)
  return {
    metrics: {
      stormMs: round(m.wallMs, 0),
      cpuPerDeliveryUs: round((m.cpuMs * 1000) / presences, 2),
      serverCpuUtil: round(m.cpuMs / m.wallMs, 2)
    },
    counts: { clients: spec.clients, presences, expected: spec.clients * others, ...m.load }
  }
}

const runSpec = (input: Input): Promise<Outcome> => {
  const spec = input.spec
  switch (spec.kind) {
    case "connect":
      return runConnect(input, spec)
    case "pingpong":
      return runPingPong(input, spec)
    case "fanout":
      return runFanout(input, spec)
    case "storm":
      return runStorm(input, spec)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points

export const formatResult = (r: Result): string => {
  const rows = Object.entries(r.metrics).map(([k, v]) => [k, String(v)])
  const counts = Object.entries(r.counts).map(([k, v]) => `${k}=${v}`).join(" ")
  return [
    `${r.scenario} on ${r.server}: ${r.ok ? "ok" : `FAILED (${r.error ?? "?"})`} in ${round(r.wallMs / 1000, 1)} s`,
    table(["metric", "value"], rows),
    counts
  ].join("\n")
}

const parseArgs = (argv: ReadonlyArray<string>): Map<string, string> => {
  const args = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a.startsWith("--")) args.set(a.slice(2), argv[i + 1] ?? "")
  }
  return args
}

const workerMain = async (input: Input): Promise<void> => {
  const t0 = performance.now()
  let result: Result
  try {
    const outcome = await runSpec(input)
    const ok = (outcome.ok ?? true) && failures.errors === 0
    result = {
      scenario: input.spec.name,
      server: input.server,
      ok,
      error:
        [outcome.error, failures.errors > 0 ? `${failures.errors} errors, first: ${failures.firstError}` : undefined]
          .filter((e) => e !== undefined).join("; ") || undefined,
      metrics: outcome.metrics,
      counts: { ...outcome.counts, errors: failures.errors, closedByServer: failures.closed },
      wallMs: round(performance.now() - t0, 0)
    }
  } catch (e) {
    result = {
      scenario: input.spec.name,
      server: input.server,
      ok: false,
      error: e instanceof Error ? e.message : String(e),
      metrics: {},
      counts: { errors: failures.errors, closedByServer: failures.closed },
      wallMs: round(performance.now() - t0, 0)
    }
  }
  parentPort?.postMessage(result)
}

const main = async (): Promise<void> => {
  const args = parseArgs(process.argv.slice(2))
  const url = args.get("url") ?? "ws://127.0.0.1:4500"
  const pid = Number(args.get("pid") ?? "0")
  const server = args.get("server") ?? "server"
  const specArg = args.get("spec")
  let spec: Spec | undefined
  if (specArg !== undefined) spec = JSON.parse(specArg) as Spec
  else {
    const name = args.get("case")
    spec = specs((args.get("mode") ?? "quick") as Mode).find((s) => s.name === name)
    if (spec === undefined) {
      const names = specs("quick").map((s) => s.name).join(", ")
      throw new Error(`give --spec '<json>' or --case <name> (one of: ${names})`)
    }
  }
  const input: Input = { url, pid, server, spec }
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: input })
  const result = await new Promise<Result>((resolve) => {
    const fail = (error: string): Result => ({
      scenario: spec.name,
      server,
      ok: false,
      error,
      metrics: {},
      counts: {},
      wallMs: spec.limitMs
    })
    const timer = setTimeout(() => {
      void worker.terminate()
      resolve(fail(`time limit of ${spec.limitMs} ms exceeded`))
    }, spec.limitMs)
    worker.once("message", (r: Result) => {
      clearTimeout(timer)
      resolve(r)
    })
    worker.once("error", (e) => {
      clearTimeout(timer)
      resolve(fail(e.message))
    })
  })
  await worker.terminate()
  process.stdout.write(`${JSON.stringify(result)}\n${formatResult(result)}\n`)
  process.exitCode = result.ok ? 0 : 1
}

if (!isMainThread) void workerMain(workerData as Input)
else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) void main()
