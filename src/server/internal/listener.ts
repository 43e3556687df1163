/**
 * The server's HTTP listener: plain HTTP, or HTTPS when the options carry a certificate, with one request handler
 * either way (WebSocket upgrades arrive on it as `upgrade` events in both cases, so ws:// becomes wss://).
 *
 * @since 0.2.0
 * @internal
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as ServerConfig from "../ServerConfig.js"

/** PEM text as given, or the content of the file it names. */
const pem = (value: string | Uint8Array, what: string): string | Buffer => {
  if (typeof value !== "string") return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (value.includes("-----BEGIN ")) return value
  try {
    return Fs.readFileSync(value)
  } catch (error) {
    throw new Error(`Cannot read the TLS ${what} ${value}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/**
 * `Http.createServer`, or `Https.createServer` with the certificate and key of `tls` (PEM text, or file paths).
 * Throws with a readable message when a file cannot be read or the certificate and key are not usable.
 */
export const createServer = (
  tls: ServerConfig.Tls | undefined,
  options: Http.ServerOptions,
  handler: Http.RequestListener
): Http.Server => {
  if (tls === undefined) return Http.createServer(options, handler)
  const cert = pem(tls.cert, "certificate")
  const key = pem(tls.key, "key")
  try {
    return Https.createServer({ ...options, cert, key }, handler)
  } catch (error) {
    throw new Error(`Invalid TLS certificate or key: ${error instanceof Error ? error.message : String(error)}`)
  }
}
