/**
 * The demo page: sign in, rooms, the live roster, chat, WebRTC calls and streamers, in the browser, built from
 * `src/client` and `src/call`. `layer()` gives the routes that serve it at `/` on a Symple server's own port:
 *
 * ```ts
 * SympleServer.layer({ port: 4500, routes: DemoPage.layer() })
 * ```
 *
 * The script is bundled with esbuild when the page is first asked for, in memory (esbuild is a development
 * dependency). Where esbuild is not installed, `write` the assets at build time and serve them with
 * `layer({ directory })`.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Zlib from "node:zlib"
import type { Routes } from "../server/ServerConfig.js"
import { indexHtml, scriptPath } from "./internal/html.js"

/**
 * @since 0.2.0
 * @category errors
 */
export class DemoPageError extends Data.TaggedError("DemoPageError")<{
  readonly reason: "Build" | "Read" | "Write"
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The page's files: the HTML and the bundled script.
 *
 * @since 0.2.0
 * @category models
 */
export interface Assets {
  readonly html: string
  readonly script: string
}

/** File names of the assets in a directory (`write`, `fromDirectory`). */
const files = { html: "index.html", script: "app.js" } as const

/** The page's entry point: the TypeScript source, or its compiled JavaScript when running from `dist/`. */
const entryPoint = (): string | undefined => {
  for (const name of ["./internal/page/main.ts", "./internal/page/main.js"]) {
    const path = fileURLToPath(new URL(name, import.meta.url))
    if (Fs.existsSync(path)) return path
  }
  return undefined
}

/**
 * Bundles the page's script for the browser with esbuild, in memory: minified ES2022, every dependency included
 * (no CDN), no Node built-ins.
 *
 * @since 0.2.0
 * @category constructors
 */
export const bundle: Effect.Effect<Assets, DemoPageError> = Effect.gen(function*() {
  const entry = entryPoint()
  if (entry === undefined) {
    return yield* new DemoPageError({
      reason: "Build",
      message: "The demo page's sources are not next to this module: serve prebuilt assets (layer({ directory }))"
    })
  }
  const esbuild = yield* Effect.tryPromise({
    try: () => import("esbuild"),
    catch: (cause) =>
      new DemoPageError({
        reason: "Build",
        message: "esbuild is needed to build the demo page (npm install), or serve prebuilt assets",
        cause
      })
  })
  const result = yield* Effect.tryPromise({
    try: () =>
      esbuild.build({
        entryPoints: [entry],
        bundle: true,
        write: false,
        minify: true,
        format: "esm",
        platform: "browser",
        target: "es2022",
        legalComments: "none",
        logLevel: "silent"
      }),
    catch: (cause) =>
      new DemoPageError({
        reason: "Build",
        message: `The demo page did not build: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })
  const script = result.outputFiles[0]?.text
  if (script === undefined) return yield* new DemoPageError({ reason: "Build", message: "esbuild produced no output" })
  return { html: indexHtml, script }
})

/**
 * Reads assets written by `write`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromDirectory = (directory: string): Effect.Effect<Assets, DemoPageError> =>
  Effect.try({
    try: () => ({
      html: Fs.readFileSync(Path.join(directory, files.html), "utf8"),
      script: Fs.readFileSync(Path.join(directory, files.script), "utf8")
    }),
    catch: (cause) =>
      new DemoPageError({ reason: "Read", message: `Cannot read the demo page from ${directory}: ${cause}`, cause })
  })

/**
 * Writes the assets to a directory (`index.html`, `app.js`), for `layer({ directory })`.
 *
 * @since 0.2.0
 * @category combinators
 */
export const write = (assets: Assets, directory: string): Effect.Effect<void, DemoPageError> =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(directory, { recursive: true })
      Fs.writeFileSync(Path.join(directory, files.html), assets.html)
      Fs.writeFileSync(Path.join(directory, files.script), assets.script)
    },
    catch: (cause) =>
      new DemoPageError({ reason: "Write", message: `Cannot write the demo page to ${directory}: ${cause}`, cause })
  })

/**
 * @since 0.2.0
 * @category models
 */
export interface DemoPageOptions {
  /** Serve the assets `write` put in this directory instead of bundling them. */
  readonly directory?: string | undefined
  /** Serve these assets (bundled ahead of time, e.g. into the `symple-ts` command) instead of bundling them. */
  readonly assets?: Assets | undefined
}

interface Served {
  readonly body: Uint8Array
  readonly gzip: Uint8Array
  readonly contentType: string
  readonly headers: Record<string, string>
}

const serveable = (body: string, contentType: string, headers: Record<string, string> = {}): Served => {
  const bytes = new TextEncoder().encode(body)
  return { body: bytes, gzip: Zlib.gzipSync(bytes, { level: 9 }), contentType, headers }
}

// The page talks to its own server and to streamers' WebSockets (any port); media come from the camera or blobs.
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self' ws: wss:"
].join("; ")

const respond = (served: Served) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const gzip = /\bgzip\b/.test(request.headers["accept-encoding"] ?? "")
    return HttpServerResponse.uint8Array(gzip ? served.gzip : served.body, {
      contentType: served.contentType,
      headers: {
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        vary: "accept-encoding",
        ...(gzip ? { "content-encoding": "gzip" } : {}),
        ...served.headers
      }
    })
  })

/**
 * The routes of the page: `GET /` (the page) and `GET /demo/app.js` (its script), for the server's `routes`
 * option. Bundled on the first request and kept (a server that is never asked for the page never runs esbuild);
 * with `directory`, read from there instead. A page that cannot be built answers 500 with the reason.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: DemoPageOptions = {}): Routes =>
  Layer.unwrap(Effect.gen(function*() {
    const load = options.assets !== undefined
      ? Effect.succeed(options.assets)
      : options.directory === undefined
      ? bundle
      : fromDirectory(options.directory)
    const assets = yield* Effect.cached(Effect.map(load, (assets) => ({
      html: serveable(assets.html, "text/html; charset=utf-8", { "content-security-policy": contentSecurityPolicy }),
      script: serveable(assets.script, "text/javascript; charset=utf-8")
    })))
    const failed = (error: DemoPageError) =>
      Effect.logError("demo page", error.message).pipe(
        Effect.as(HttpServerResponse.text(`The demo page is not available: ${error.message}\n`, { status: 500 }))
      )
    const serve = (pick: (a: Effect.Success<typeof assets>) => Served) =>
      Effect.flatMap(assets, (a) => respond(pick(a))).pipe(Effect.catch(failed))
    return Layer.mergeAll(
      HttpRouter.add("GET", "/", serve((a) => a.html)),
      HttpRouter.add("GET", scriptPath, serve((a) => a.script))
    )
  }))
