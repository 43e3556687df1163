/**
 * Owns the binary envelope that carries frames to another node: rendering it (straight into the `PUBLISH` command
 * that goes to the socket) and reading it back on receipt, record by record, without a copy of the frames. The
 * format is documented on `RedisBroker.envelope`.
 *
 * @since 0.2.0
 * @internal
 */
import type * as Frame from "../../protocol/Frame.js"
import type { EnvelopeRecord } from "../RedisBroker.js"

/** Bytes of the records as `writeRecords` writes them. */
const recordsSize = (records: ReadonlyArray<EnvelopeRecord>): number => {
  let size = 0
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const ids = record.ids
    size += 8 + 4 * ids.length + record.bytes.length
    for (let j = 0; j < ids.length; j++) size += Buffer.byteLength(ids[j]!)
  }
  return size
}

const writeRecords = (out: Buffer, at: number, records: ReadonlyArray<EnvelopeRecord>): number => {
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const ids = record.ids
    out.writeUInt32BE(ids.length, at)
    at += 4
    for (let j = 0; j < ids.length; j++) {
      const written = out.write(ids[j]!, at + 4, "utf8")
      out.writeUInt32BE(written, at)
      at += 4 + written
    }
    const bytes = record.bytes
    out.writeUInt32BE(bytes.length, at)
    out.set(bytes, at + 4)
    at += 4 + bytes.length
  }
  return at
}

/**
 * An envelope on its own (see `RedisBroker.envelope`).
 *
 * @since 0.2.0
 * @internal
 */
export const envelope = (records: ReadonlyArray<EnvelopeRecord>): Buffer => {
  const out = Buffer.allocUnsafe(recordsSize(records))
  writeRecords(out, 0, records)
  return out
}

/**
 * The `PUBLISH` of an envelope (see `RedisBroker.publishEnvelope`).
 *
 * @since 0.2.0
 * @internal
 */
export const publishEnvelope = (channel: Buffer, records: ReadonlyArray<EnvelopeRecord>): Buffer => {
  const size = recordsSize(records)
  const head = `*3\r\n$7\r\nPUBLISH\r\n$${channel.length}\r\n`
  const sizeLine = `\r\n$${size}\r\n`
  const out = Buffer.allocUnsafe(head.length + channel.length + sizeLine.length + size + 2)
  let at = out.write(head, 0, "latin1")
  at += channel.copy(out, at)
  at += out.write(sizeLine, at, "latin1")
  at = writeRecords(out, at, records)
  out[at] = 13
  out[at + 1] = 10
  return out
}

/** Whether `message` is a whole envelope: every length within it, and nothing left over. */
const isEnvelope = (message: Buffer): boolean => {
  const end = message.length
  let at = 0
  while (at < end) {
    if (at + 4 > end) return false
    const count = message.readUInt32BE(at)
    at += 4
    for (let j = 0; j < count; j++) {
      if (at + 4 > end) return false
      at += 4 + message.readUInt32BE(at)
    }
    if (at + 4 > end) return false
    at += 4 + message.readUInt32BE(at)
    if (at > end) return false
  }
  return true
}

/**
 * Calls `visit` with each record of an envelope (see `RedisBroker.forEachRecord`).
 *
 * @since 0.2.0
 * @internal
 */
export const forEachRecord = (
  message: Buffer,
  visit: (ids: ReadonlyArray<string>, bytes: Buffer) => void
): boolean => {
  if (!isEnvelope(message)) return false
  const ids: Array<string> = []
  let at = 0
  while (at < message.length) {
    const count = message.readUInt32BE(at)
    at += 4
    ids.length = count
    for (let j = 0; j < count; j++) {
      const length = message.readUInt32BE(at)
      ids[j] = message.toString("utf8", at + 4, at + 4 + length)
      at += 4 + length
    }
    const length = message.readUInt32BE(at)
    visit(ids, message.subarray(at + 4, at + 4 + length))
    at += 4 + length
  }
  return true
}

/**
 * The records of an envelope, copied out (see `RedisBroker.openEnvelope`).
 *
 * @since 0.2.0
 * @internal
 */
export const openEnvelope = (
  message: Buffer
): ReadonlyArray<{ readonly ids: ReadonlyArray<string>; readonly bytes: Buffer }> | undefined => {
  const out: Array<{ readonly ids: ReadonlyArray<string>; readonly bytes: Buffer }> = []
  return forEachRecord(message, (ids, bytes) => out.push({ ids: [...ids], bytes })) ? out : undefined
}

/**
 * The frame inside a complete WebSocket text frame (as `socketWriter.encode` renders it).
 *
 * @since 0.2.0
 * @internal
 */
export const frameOf = (bytes: Uint8Array): Frame.Frame => {
  const length = bytes[1]! & 127
  const offset = length < 126 ? 2 : length === 126 ? 4 : 10
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + offset, bytes.length - offset).toString("utf8"))
}
