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
import { spawn } from "node:child_process"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"
import { WebSocket } from "ws"
import {
  type ConnectSpec,
  type FanoutSpec,
  findSpec,
  type IdleSpec,
  type Mode,
  type PingPongSpec,
  type Spec,
  specs,
  type StormSpec
} from "./scenarios.js"
import {
  type CollectedMemory,
  cpuMillis,
  Histogram,
  memoryPath,
  openFileLimit,
  round,
  rssKiB,
  systemBusyMillis,
  table
} from "./stats.js"

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
  onData: (client: Client, buf: Buffer) => void = () => {},
  localAddress?: string
): Promise<Client> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      ...(localAddress === undefined ? {} : { localAddress })
    })
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

/** The loopback source address of an idle case's connection `i`: 127.0.0.2 and up, in turn. */
const sourceAddress = (spec: IdleSpec, i: number): string => `127.0.0.${2 + (i % spec.sourceAddresses)}`

/**
 * The connections an idle case's part (generator process) opens in a step, `[from, to)`: its share of the
 * connections, in two halves (step 0, then step 1), so that the server can also be measured at half the count.
 */
const stepRange = (spec: IdleSpec, part: number, step: number): readonly [number, number] => {
  const from = Math.floor((spec.connections * part) / spec.processes)
  const to = Math.floor((spec.connections * (part + 1)) / spec.processes)
  const mid = from + Math.floor((to - from) / 2)
  return step === 0 ? [from, mid] : [mid, to]
}

/** What a part of an idle case has seen so far. */
interface PartReport {
  readonly connected: number
  /** Frames received after the welcome: online presences of the others in the room. */
  readonly presences: number
  readonly errors: number
  readonly closed: number
  readonly firstError: string
}

/** One part of an idle case, in this process or in a child process. */
interface Part {
  /** Connects the step's clients, each `i<n>` in `room<n / roomSize>` from its source address; each sends only `auth`. */
  readonly connect: (step: number) => Promise<void>
  readonly report: () => Promise<PartReport>
  readonly stop: () => Promise<void>
}

const localPart = (url: string, spec: IdleSpec, part: number): Part & { readonly clients: Array<Client> } => {
  const clients: Array<Client> = []
  return {
    clients,
    connect: async (step) => {
      const [from, to] = stepRange(spec, part, step)
      const room = (i: number) => `room${Math.floor(i / spec.roomSize)}`
      clients.push(
        ...(await pool(
          to - from,
          spec.connectConcurrency,
          (k) =>
            connect(url, { user: `i${from + k}`, rooms: [room(from + k)] }, () => {}, sourceAddress(spec, from + k))
        ))
      )
    },
    report: () =>
      Promise.resolve({
        connected: clients.length,
        presences: clients.reduce((n, c) => n + c.frames - 1, 0),
        errors: failures.errors,
        closed: failures.closed,
        firstError: failures.firstError
      }),
    stop: () => Promise.resolve(closeAll(clients))
  }
}

/**
 * A part of an idle case in a process of its own (`--part n`), driven by lines on stdin: `connect <step>` is answered
 * with `{"connected":n}` (or `{"failed":"..."}`), `report` with a `PartReport`; the end of stdin (the coordinator
 * finished, or died) closes every client and ends the process.
 */
const partMain = (url: string, spec: IdleSpec, part: number): void => {
  const local = localPart(url, spec, part)
  const lines = Readline.createInterface({ input: process.stdin })
  const answer = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`)
  lines.on("line", (line) => {
    const [command, arg] = line.split(" ")
    if (command === "report") void local.report().then(answer)
    else if (command === "connect") {
      local.connect(Number(arg)).then(
        () => answer({ connected: local.clients.length }),
        (e: unknown) => answer({ failed: e instanceof Error ? e.message : String(e) })
      )
    }
  })
  lines.once("close", () => {
    void local.stop()
    process.exit(0)
  })
}

/** A part of an idle case in a child process (see `partMain`). */
const remotePart = (input: Input, spec: IdleSpec, part: number): Part => {
  const child = spawn(process.execPath, [
    fileURLToPath(import.meta.url),
    "--part",
    String(part),
    "--url",
    input.url,
    "--spec",
    JSON.stringify(spec)
  ], { stdio: ["pipe", "pipe", "inherit"] })
  const lines = Readline.createInterface({ input: child.stdout })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  /** Sends a command; resolves with the next JSON line the part prints. */
  const ask = (command: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const onLine = (line: string) => {
        if (!line.startsWith("{")) return
        lines.off("line", onLine)
        resolve(JSON.parse(line) as Record<string, unknown>)
      }
      lines.on("line", onLine)
      void exited.then(() => resolve({ failed: `generator part ${part} exited` }))
      child.stdin.write(`${command}\n`)
    })
  return {
    connect: async (step) => {
      const answer = await ask(`connect ${step}`)
      if (typeof answer["failed"] === "string") throw new Error(`generator part ${part}: ${answer["failed"]}`)
    },
    report: async () => {
      const answer = await ask("report")
      if (typeof answer["failed"] === "string") throw new Error(`generator part ${part}: ${answer["failed"]}`)
      return answer as unknown as PartReport
    },
    stop: async () => {
      child.stdin.end()
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(killer)
    }
  }
}

/** The server's memory after a full collection, from `GET /bench/memory`; undefined when it does not serve it. */
const serverMemory = async (url: string): Promise<CollectedMemory | undefined> => {
  const response = await fetch(new URL(memoryPath, url.replace(/^ws/, "http")))
  return response.ok ? (await response.json() as CollectedMemory) : undefined
}

/** Waits (at most `limitMs`) until the server has used under 5% of a core for `quietMs`. */
const serverIdle = async (pid: number, quietMs = 500, limitMs = 30_000): Promise<void> => {
  const deadline = performance.now() + limitMs
  while (performance.now() < deadline) {
    const before = cpuMillis(pid)
    await sleep(quietMs)
    if (cpuMillis(pid) - before < quietMs * 0.05) return
  }
}

/** Online presences an idle case's clients should see: in a room of m peers, each sees the m - 1 others. */
const expectedPresences = (spec: IdleSpec): number => {
  let total = 0
  for (let start = 0; start < spec.connections; start += spec.roomSize) {
    const m = Math.min(spec.roomSize, spec.connections - start)
    total += m * (m - 1)
  }
  return total
}

const KiB = 1024

/** The server's RSS (KiB) and, when it serves `GET /bench/memory`, its memory after a full collection. */
interface Reading {
  readonly rss: number
  readonly memory: CollectedMemory | undefined
}

/**
 * `spec.connections` authenticated peers in rooms of `spec.roomSize`, split over `spec.processes` generator processes
 * (this one holds the first part), left idle: what the server holds per connection once they settle. Its RSS and,
 * when it serves `GET /bench/memory` (run with `--expose-gc`), its live heap are read after a full collection,
 * before the first connection, once half the connections have settled and once all have. Per connection: from none
 * to all (`rssPerConnKiB`, `heapPerConnKiB`), and from half to all (`rssMarginalPerConnKiB`: memory a server
 * already held from its start, freed and reused for the first sockets, does not count there).
 */
const runIdle = async (input: Input, spec: IdleSpec): Promise<Outcome> => {
  // One descriptor per connection in the server, and in whichever generator process holds it.
  const serverLimit = openFileLimit(input.pid)
  const needed = spec.connections + 64
  if (!(serverLimit >= needed)) {
    throw new Error(
      `the server may open ${serverLimit} files and the case needs ${needed}: raise its limit (ulimit -n)`
    )
  }
  const share = Math.ceil(spec.connections / spec.processes) + 64
  if (!(openFileLimit() >= share)) throw new Error(`a generator process may open only ${openFileLimit()} files`)
  const reading = async (): Promise<Reading> => {
    await serverIdle(input.pid)
    const memory = await serverMemory(input.url)
    return { rss: rssKiB(input.pid), memory }
  }
  const own = localPart(input.url, spec, 0)
  const parts: ReadonlyArray<Part> = [
    own,
    ...Array.from({ length: spec.processes - 1 }, (_, k) => remotePart(input, spec, k + 1))
  ]
  const report = async (): Promise<PartReport> => {
    const reports = await Promise.all(parts.map((p) => p.report()))
    return {
      connected: reports.reduce((n, r) => n + r.connected, 0),
      presences: reports.reduce((n, r) => n + r.presences, 0),
      errors: reports.reduce((n, r) => n + r.errors, 0),
      closed: reports.reduce((n, r) => n + r.closed, 0),
      firstError: reports.find((r) => r.errors > 0)?.firstError ?? ""
    }
  }
  try {
    const none = await reading()
    const measure = measureWindow(input.pid)
    const connectStep = async (step: number) => {
      const t0 = performance.now()
      await Promise.all(parts.map((p) => p.connect(step)))
      return performance.now() - t0
    }
    let connectMs = await connectStep(0)
    const atHalf = (await report()).connected
    await settle(own.clients, 200, spec.limitMs)
    const half = await reading()
    connectMs += await connectStep(1)
    const window = measure()
    await settle(own.clients, 200, spec.limitMs)
    const settledRss = rssKiB(input.pid)
    const all = await reading()
    const expected = expectedPresences(spec)
    let seen = await report()
    // A generator process may still be reading the last presences the idle server wrote.
    for (let tries = 0; tries < 20 && seen.presences < expected; tries++) {
      await sleep(250)
      seen = await report()
    }
    const problems = [
      seen.connected === spec.connections ? undefined : `${seen.connected} of ${spec.connections} connected`,
      seen.presences === expected ? undefined : `${seen.presences} presences seen, ${expected} expected`,
      seen.errors === 0 ? undefined : `${seen.errors} errors, first: ${seen.firstError}`
    ].filter((p) => p !== undefined)
    const heap = none.memory !== undefined && half.memory !== undefined && all.memory !== undefined
    const perConn = (after: number, before: number, n: number) => round((after - before) / n, 2)
    return {
      ...(problems.length > 0 ? { ok: false, error: problems.join("; ") } : {}),
      metrics: {
        rssPerConnKiB: perConn(all.rss, none.rss, spec.connections),
        rssMarginalPerConnKiB: perConn(all.rss, half.rss, spec.connections - atHalf),
        ...(heap
          ? {
            heapPerConnKiB: perConn(all.memory!.heapUsed / KiB, none.memory!.heapUsed / KiB, spec.connections),
            externalPerConnKiB: perConn(all.memory!.external / KiB, none.memory!.external / KiB, spec.connections)
          }
          : {}),
        connectsPerSec: round(spec.connections / (connectMs / 1000), 0)
      },
      counts: {
        connections: spec.connections,
        processes: spec.processes,
        sourceAddresses: spec.sourceAddresses,
        presences: seen.presences,
        closedByServerAnyPart: seen.closed,
        rssBeforeKiB: none.rss,
        rssHalfKiB: half.rss,
        rssSettledKiB: settledRss,
        rssAfterKiB: all.rss,
        ...(heap
          ? {
            heapBeforeKiB: round(none.memory!.heapUsed / KiB, 0),
            heapHalfKiB: round(half.memory!.heapUsed / KiB, 0),
            heapAfterKiB: round(all.memory!.heapUsed / KiB, 0)
          }
          : { heapReported: 0 }),
        connectMs: round(connectMs, 0),
        ...window.load
      }
    }
  } finally {
    await Promise.all(parts.map((p) => p.stop()))
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
    case "idle":
      return runIdle(input, spec)
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
    spec = name === undefined ? undefined : findSpec((args.get("mode") ?? "quick") as Mode, name)
    if (spec === undefined) {
      const names = specs("quick").map((s) => s.name).join(", ")
      throw new Error(`give --spec '<json>' or --case <name> (one of: ${names})`)
    }
  }
  const part = args.get("part")
  if (part !== undefined) {
    if (spec.kind !== "idle") throw new Error("--part is for idle cases")
    return partMain(url, spec, Number(part))
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
