/**
 * Real Chromium for the page tests: Debian's `chromium` driven by playwright-core (which never downloads a browser).
 * A test that needs it fails when it is missing: `.ci/run` installs it.
 */
import { Effect, Exit, Scope } from "effect"
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { type Browser, chromium, type Locator, type Page } from "playwright-core"
import type { ServerOptions } from "../../src/server/index.js"
import * as SympleServer from "../../src/server/index.js"
import { DemoPage } from "../../src/web/index.js"

export const chromiumPath = "/usr/bin/chromium"

/** Screenshots and other test output, ignored by git. */
export const artifacts = fileURLToPath(new URL("../../artifacts/web/", import.meta.url))

export const launch = async (): Promise<Browser> => {
  if (!Fs.existsSync(chromiumPath)) {
    throw new Error(`Chromium is required at ${chromiumPath} for the page tests: apt-get install chromium`)
  }
  Fs.mkdirSync(artifacts, { recursive: true })
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    timeout: 15_000,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Without these Chromium offers no ICE candidates on loopback, and asks before opening the camera.
      "--allow-loopback-in-peer-connection",
      "--use-fake-ui-for-media-stream",
      // A camera and microphone that exist: pages that ask for them get a test picture and tone.
      "--use-fake-device-for-media-stream"
    ]
  })
}

export interface DemoServer {
  readonly url: string
  readonly port: number
  readonly close: () => Promise<void>
}

/** A Symple server on a free port with the demo page at `/`. */
export const startServer = async (options: Partial<ServerOptions> = {}): Promise<DemoServer> => {
  const scope = Effect.runSync(Scope.make())
  const server = await Effect.runPromise(
    Scope.provide(
      SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1", routes: DemoPage.layer(), ...options }),
      scope
    )
  )
  return {
    url: `http://127.0.0.1:${server.port}/`,
    port: server.port,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** A page in a context of its own (its own cookies and storage), with camera and microphone allowed. */
export const openPage = async (browser: Browser, url: string): Promise<Page> => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } })
  await context.grantPermissions(["camera", "microphone"], { origin: new URL(url).origin })
  const page = await context.newPage()
  page.setDefaultTimeout(10_000)
  await page.goto(url)
  return page
}

export const signIn = async (
  page: Page,
  name: string,
  options: { readonly rooms?: string; readonly token?: string; readonly camera?: boolean } = {}
): Promise<void> => {
  await page.getByLabel("Name", { exact: true }).fill(name)
  await page.getByLabel("Rooms to join").fill(options.rooms ?? "lobby")
  if (options.token !== undefined) await page.getByLabel("Token", { exact: true }).fill(options.token)
  await page.getByLabel(/camera and microphone/).setChecked(options.camera ?? false)
  await page.getByRole("button", { name: "Sign in" }).click()
}

/** Waits for a locator's text to contain `text`. */
export const hasText = (locator: Locator, text: string | RegExp, timeout = 10_000): Promise<void> =>
  locator.filter({ hasText: text }).first().waitFor({ timeout })

/** Polls `read` until `accept` holds; returns the last value. */
export const until = async <A>(
  read: () => Promise<A>,
  accept: (a: A) => boolean,
  what: string,
  timeout = 10_000
): Promise<A> => {
  const deadline = Date.now() + timeout
  let last = await read()
  while (!accept(last)) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what} (last: ${JSON.stringify(last)})`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    last = await read()
  }
  return last
}
