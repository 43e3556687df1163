/**
 * A V8 heap snapshot (`.heapsnapshot`, as `v8.writeHeapSnapshot()` or `node --heapsnapshot-signal` write it) read
 * into flat arrays, with its dominator tree, a label for every node, and self sizes summed by label. Used by
 * `heap-per-connection.ts`; runs on its own to list what a snapshot holds:
 *
 *   npx tsx scripts/heap-snapshot.ts <file.heapsnapshot> [--top 40]
 *
 * Labels say what a node is, not where it is: a class instance by its constructor (`WebSocket`), a plain object by
 * its first property names (`{id,user,name}`), a closure by its function (`closure onMessage`), and what has no
 * name of its own (arrays, strings, contexts, hidden and code objects) by its type and the label of its immediate
 * dominator, the object it belongs to (`array in Socket`). Weak edges do not hold: they are left out of the tree, as
 * in the browser's memory tools.
 */
import { readFileSync } from "node:fs"

export interface Snapshot {
  readonly nodeCount: number
  readonly selfSize: Float64Array
  readonly label: ReadonlyArray<string>
  /** Immediate dominator of every node (-1 for the root and for nodes only weakly reachable). */
  readonly idom: Int32Array
  /** Nodes in an order where every node's dominator comes before it (reachable nodes only). */
  readonly topDown: Uint32Array
  /** Sum of self sizes. */
  readonly total: number
}

interface Raw {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: ReadonlyArray<string>
      readonly node_types: readonly [ReadonlyArray<string>, ...Array<unknown>]
      readonly edge_fields: ReadonlyArray<string>
      readonly edge_types: readonly [ReadonlyArray<string>, ...Array<unknown>]
    }
    readonly node_count: number
    readonly edge_count: number
  }
  readonly nodes: ReadonlyArray<number>
  readonly edges: ReadonlyArray<number>
  readonly strings: ReadonlyArray<string>
  /** `[object_index, script_id, line, column]` per closure, where V8 recorded it. */
  readonly locations?: ReadonlyArray<number>
}

/** Labels whose instances are better told apart by what they belong to. */
const generic = new Set(["Array", "Object", "Set", "Map", "WeakMap", "system / Context", "(object elements)"])

const shapeOf = (names: ReadonlyArray<string>): string =>
  `{${names.slice(0, 6).join(",")}${names.length > 6 ? ",…" : ""}}`

export const read = (file: string): Snapshot => {
  const raw = JSON.parse(readFileSync(file, "utf8")) as Raw
  const meta = raw.snapshot.meta
  const nf = meta.node_fields.length
  const ef = meta.edge_fields.length
  const nType = meta.node_fields.indexOf("type")
  const nName = meta.node_fields.indexOf("name")
  const nSize = meta.node_fields.indexOf("self_size")
  const nEdges = meta.node_fields.indexOf("edge_count")
  const eType = meta.edge_fields.indexOf("type")
  const eName = meta.edge_fields.indexOf("name_or_index")
  const eTo = meta.edge_fields.indexOf("to_node")
  const nodeTypes = meta.node_types[0]
  const edgeTypes = meta.edge_types[0]
  const weak = edgeTypes.indexOf("weak")
  const property = edgeTypes.indexOf("property")
  const nodes = raw.nodes
  const edges = raw.edges
  const strings = raw.strings
  const n = raw.snapshot.node_count
  const firstEdge = new Uint32Array(n + 1)
  for (let i = 0, e = 0; i < n; i++) {
    firstEdge[i] = e
    e += nodes[i * nf + nEdges]! * ef
  }
  firstEdge[n] = edges.length
  const selfSize = new Float64Array(n)
  let total = 0
  for (let i = 0; i < n; i++) {
    selfSize[i] = nodes[i * nf + nSize]!
    total += selfSize[i]!
  }
  const target = (e: number) => edges[e + eTo]! / nf

  // Post order from the root over strong edges.
  const post = new Int32Array(n).fill(-1)
  const order = new Uint32Array(n)
  const cursor = new Uint32Array(n)
  const stack = new Uint32Array(n)
  const seen = new Uint8Array(n)
  let reached = 0
  let top = 0
  stack[top++] = 0
  seen[0] = 1
  cursor[0] = firstEdge[0]!
  while (top > 0) {
    const v = stack[top - 1]!
    const e = cursor[v]!
    if (e < firstEdge[v + 1]!) {
      cursor[v] = e + ef
      if (edges[e + eType] === weak) continue
      const w = target(e)
      if (seen[w] === 0) {
        seen[w] = 1
        cursor[w] = firstEdge[w]!
        stack[top++] = w
      }
    } else {
      top--
      post[v] = reached
      order[reached++] = v
    }
  }

  // Predecessors over strong edges, then Cooper, Harvey and Kennedy's iterative dominators.
  const predCount = new Uint32Array(n + 1)
  for (let v = 0; v < n; v++) {
    if (post[v]! < 0) continue
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) {
      if (edges[e + eType] !== weak) predCount[target(e) + 1]!++
    }
  }
  for (let i = 0; i < n; i++) predCount[i + 1]! += predCount[i]!
  const preds = new Uint32Array(predCount[n]!)
  const fill = predCount.slice(0, n)
  for (let v = 0; v < n; v++) {
    if (post[v]! < 0) continue
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) {
      if (edges[e + eType] !== weak) preds[fill[target(e)]!++] = v
    }
  }
  // Dominators by post-order index.
  const dom = new Int32Array(reached).fill(-1)
  const rootPost = post[0]!
  dom[rootPost] = rootPost
  let changed = true
  while (changed) {
    changed = false
    for (let p = reached - 1; p >= 0; p--) {
      if (p === rootPost) continue
      const v = order[p]!
      let idom = -1
      for (let k = predCount[v]!; k < predCount[v + 1]!; k++) {
        const q = post[preds[k]!]!
        if (q < 0 || dom[q] === -1) continue
        if (idom === -1) idom = q
        else {
          let a = q
          let b = idom
          while (a !== b) {
            while (a < b) a = dom[a]!
            while (b < a) b = dom[b]!
          }
          idom = a
        }
      }
      if (idom !== -1 && dom[p] !== idom) {
        dom[p] = idom
        changed = true
      }
    }
  }
  const idom = new Int32Array(n).fill(-1)
  for (let p = 0; p < reached; p++) if (p !== rootPost) idom[order[p]!] = order[dom[p]!]!
  const topDown = new Uint32Array(reached)
  for (let p = 0; p < reached; p++) topDown[p] = order[reached - 1 - p]!

  // Where anonymous closures are defined (line and column of their script, from 1).
  const where = new Map<number, string>()
  const locations = raw.locations ?? []
  for (let i = 0; i + 3 < locations.length; i += 4) {
    where.set(locations[i]! / nf, `@${locations[i + 2]! + 1}:${locations[i + 3]! + 1}`)
  }
  // Labels: own ones first, then those that name their dominator's.
  const own = new Array<string>(n)
  const typeOf = (v: number) => nodeTypes[nodes[v * nf + nType]!] ?? "?"
  for (let v = 0; v < n; v++) {
    const type = typeOf(v)
    const name = strings[nodes[v * nf + nName]!] ?? ""
    if (type === "object") {
      if (name === "Object") {
        const names: Array<string> = []
        for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) {
          if (edges[e + eType] !== property) continue
          const key = strings[edges[e + eName]!] ?? ""
          if (key !== "__proto__") names.push(key)
        }
        own[v] = names.length === 0 ? "Object" : shapeOf(names)
      } else own[v] = name.startsWith("system / ") || name === "" ? name || "(anonymous object)" : name
    } else if (type === "closure") own[v] = `closure ${name || `(anonymous)${where.get(v) ?? ""}`}`
    else if (type === "native" || type === "synthetic") own[v] = `${type} ${name}`
    else if (type === "hidden" || type === "code" || type === "object shape") own[v] = `${type} ${name}`
    else own[v] = type
  }
  // Up to three owners, while they have no name of their own either.
  const needsOwner = (mine: string) => generic.has(mine) || !(mine.startsWith("{") || /^_*[A-Z]/.test(mine))
  const label = new Array<string>(n)
  for (let v = 0; v < n; v++) {
    let text = own[v]!
    let at = v
    for (let depth = 0; depth < 3 && needsOwner(own[at]!); depth++) {
      const d = idom[at]!
      if (d < 0) break
      text += ` in ${own[d]}`
      at = d
    }
    label[v] = text
  }
  return { nodeCount: n, selfSize, label, idom, topDown, total }
}

/** Self size and count by label. */
export const byLabel = (snapshot: Snapshot): Map<string, { bytes: number; count: number }> => {
  const out = new Map<string, { bytes: number; count: number }>()
  for (let v = 0; v < snapshot.nodeCount; v++) {
    const key = snapshot.label[v]!
    const entry = out.get(key)
    if (entry === undefined) out.set(key, { bytes: snapshot.selfSize[v]!, count: 1 })
    else {
      entry.bytes += snapshot.selfSize[v]!
      entry.count++
    }
  }
  return out
}

/**
 * Self size and count by category: a node's category is the one `categoryOf` gives its label, or else its
 * dominator's (the object it belongs to), or what `orphanOf` gives its label when no dominator has one, or
 * `uncategorised: <label>`. `alone` names nodes counted apart that pass no category on (C++ objects, which own JS
 * objects of every kind).
 */
export const byCategory = (
  snapshot: Snapshot,
  categoryOf: (label: string) => string | undefined,
  alone: (label: string) => string | undefined = () => undefined,
  orphanOf: (label: string) => string | undefined = () => undefined
): Map<string, { bytes: number; count: number }> => {
  const category = new Array<string | undefined>(snapshot.nodeCount)
  const out = new Map<string, { bytes: number; count: number }>()
  const add = (key: string, bytes: number) => {
    const entry = out.get(key)
    if (entry === undefined) out.set(key, { bytes, count: 1 })
    else {
      entry.bytes += bytes
      entry.count++
    }
  }
  for (const v of snapshot.topDown) {
    const d = snapshot.idom[v]!
    const label = snapshot.label[v]!
    const own = categoryOf(label)
    category[v] = own ?? (d >= 0 ? category[d] : undefined) ?? orphanOf(label)
    add(alone(label) ?? category[v] ?? `uncategorised: ${label}`, snapshot.selfSize[v]!)
  }
  return out
}

if (process.argv[1]?.endsWith("heap-snapshot.ts")) {
  const file = process.argv[2]
  if (file === undefined) throw new Error("usage: heap-snapshot.ts <file.heapsnapshot> [--top n]")
  const i = process.argv.indexOf("--top")
  const topN = i < 0 ? 40 : Number(process.argv[i + 1])
  const snapshot = read(file)
  const rows = [...byLabel(snapshot)].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, topN)
  process.stdout.write(`${snapshot.nodeCount} nodes, ${(snapshot.total / 1048576).toFixed(1)} MiB\n`)
  for (const [key, { bytes, count }] of rows) {
    process.stdout.write(`${String(bytes).padStart(10)} ${String(count).padStart(8)}  ${key}\n`)
  }
}
