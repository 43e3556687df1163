/**
 * Certificates made at test time with `openssl` (CI installs it when missing): a private certificate authority and
 * a server certificate it signed, for `localhost` and 127.0.0.1, valid for a day.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export interface Certificates {
  /** Directory holding `ca.pem`, `server.pem` and `server.key`. */
  readonly dir: string
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
  readonly ca: string
  readonly cert: string
  readonly key: string
}

let made: Certificates | undefined

/** The certificates of this test file's process, made once (the directory goes when the process exits). */
export const certificates = (): Certificates => {
  if (made !== undefined) return made
  const dir = mkdtempSync(Path.join(Os.tmpdir(), "symple-tls-"))
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string) => Path.join(dir, name)
  const openssl = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=symple test CA")
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
  writeFileSync(
    file("server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
  )
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "server.ext",
    "-out",
    "server.pem"
  )
  made = {
    dir,
    caFile: file("ca.pem"),
    certFile: file("server.pem"),
    keyFile: file("server.key"),
    ca: readFileSync(file("ca.pem"), "utf8"),
    cert: readFileSync(file("server.pem"), "utf8"),
    key: readFileSync(file("server.key"), "utf8")
  }
  return made
}
