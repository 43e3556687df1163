/**
 * The demo page in real Chromium against a real server: sign-in, rooms, the roster, chat, a WebRTC call with media,
 * and a streamer. One browser for the file; each test has pages of its own and rooms of its own.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { artifacts, type DemoServer, hasText, launch, openPage, signIn, startServer, until } from "./browser.js"
import { startStreamer } from "./streamer.js"

let browser: Browser
let server: DemoServer

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launch(), startServer()])
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

const peerItem = (page: Page, name: string) => page.locator("#peer-list li").filter({ hasText: name })

describe("demo page", () => {
  it("two people sign in, see each other, chat in a room and directly, join and leave rooms", async () => {
    const [alice, bob] = await Promise.all([openPage(browser, server.url), openPage(browser, server.url)])
    // Alice by keyboard alone: the name field has the focus, Tab moves through labelled fields, Enter submits.
    await alice.keyboard.type("alice")
    await alice.keyboard.press("Tab")
    await alice.keyboard.press("Tab")
    await alice.keyboard.press("ControlOrMeta+a")
    await alice.keyboard.type("chat-room")
    await alice.keyboard.press("Enter")
    await hasText(alice.locator("#who"), "Signed in as alice")
    await signIn(bob, "bob", { rooms: "chat-room" })
    await hasText(bob.locator("#connection"), "Online")

    // The roster: each sees the other, with a labelled call button.
    await alice.getByRole("button", { name: "Call bob" }).waitFor()
    await bob.getByRole("button", { name: "Call alice" }).waitFor()
    expect(await alice.locator("#peer-list li").count()).toBe(1)

    // Room chat, sent with the keyboard from the message field.
    await alice.getByLabel("To", { exact: true }).selectOption({ label: "Room chat-room" })
    await alice.getByLabel("Message", { exact: true }).fill("hello room")
    await alice.getByLabel("Message", { exact: true }).press("Enter")
    await hasText(bob.locator("#chat-log li[data-kind=room]"), "alice in chat-room: hello room")
    await hasText(alice.locator("#chat-log li"), "You in chat-room: hello room")

    // A direct message from the roster's Message button.
    await bob.getByRole("button", { name: "Message alice" }).click()
    expect(await bob.getByLabel("Message", { exact: true }).evaluate((e) => e === document.activeElement)).toBe(true)
    await bob.keyboard.type("just for you")
    await bob.keyboard.press("Enter")
    await hasText(alice.locator("#chat-log li[data-kind=direct]"), "bob to you: just for you")

    // Rooms: alice joins a second room and leaves the shared one. The server announces neither, so bob still lists
    // her, but rooms are the permission boundary: what bob sends to the old room no longer reaches her, and once
    // bob is in her new room, what he sends there does (frames from one sender arrive in order).
    const targets = () => alice.locator("#chat-to option").allTextContents()
    await alice.getByLabel("Join a room").fill("side")
    await alice.getByRole("button", { name: "Join", exact: true }).click()
    await alice.getByRole("button", { name: "Leave room side" }).waitFor()
    await alice.getByRole("button", { name: "Leave room chat-room" }).click()
    await alice.getByRole("button", { name: "Leave room chat-room" }).waitFor({ state: "detached" })
    await until(targets, (t) => t.includes("Room side") && !t.includes("Room chat-room"), "the new chat targets")
    await bob.getByLabel("To", { exact: true }).selectOption({ label: "Room chat-room" })
    await bob.getByLabel("Message", { exact: true }).fill("anyone still here?")
    await bob.getByLabel("Message", { exact: true }).press("Enter")
    await bob.getByLabel("Join a room").fill("side")
    await bob.getByLabel("Join a room").press("Enter")
    await bob.getByRole("button", { name: "Leave room side" }).waitFor()
    await bob.getByLabel("To", { exact: true }).selectOption({ label: "Room side" })
    await bob.getByLabel("Message", { exact: true }).fill("found you")
    await bob.getByLabel("Message", { exact: true }).press("Enter")
    await hasText(alice.locator("#chat-log li"), "bob in side: found you")
    expect(await alice.locator("#chat-log").textContent()).not.toContain("anyone still here?")

    // Signing out takes alice offline for bob, and gives her the sign-in form back.
    await alice.getByRole("button", { name: "Sign out" }).click()
    await peerItem(bob, "alice").waitFor({ state: "detached" })
    await alice.getByRole("button", { name: "Sign in" }).waitFor()
    await Promise.all([alice.context().close(), bob.context().close()])
  })

  it("every control has an accessible name", async () => {
    const page = await openPage(browser, server.url)
    const unnamed = () =>
      page.locator("button, input, select, video, canvas, ol, ul").evaluateAll((elements) =>
        elements.filter((e) => {
          const labelled = e instanceof HTMLInputElement || e instanceof HTMLSelectElement
            ? (e.labels?.length ?? 0) > 0
            : false
          const text = e instanceof HTMLButtonElement ? (e.textContent ?? "").trim() : ""
          return !labelled && text === "" && !e.hasAttribute("aria-label") && !e.hasAttribute("aria-labelledby")
        }).map((e) => e.outerHTML.slice(0, 80))
      )
    expect(await unnamed()).toEqual([])
    await signIn(page, "labels", { rooms: "labels-room" })
    await hasText(page.locator("#connection"), "Online")
    expect(await unnamed()).toEqual([])
    await page.context().close()
  })

  it("a call between two pages reaches Active with video flowing both ways, then hangs up", async () => {
    const [alice, bob] = await Promise.all([openPage(browser, server.url), openPage(browser, server.url)])
    // Alice has no camera (a drawn picture); bob uses the browser's (fake) camera and microphone.
    await signIn(alice, "alice", { rooms: "call-room", camera: false })
    await signIn(bob, "bob", { rooms: "call-room", camera: true })
    await alice.getByRole("button", { name: "Call bob" }).click()
    await hasText(bob.locator("#call-state"), "alice is calling")
    await bob.getByRole("button", { name: "Accept" }).focus()
    await bob.keyboard.press("Enter")

    for (const page of [alice, bob]) {
      await page.locator("#call[data-call-state=Active]").waitFor()
      const packets = () => page.locator("#call-stats").evaluate((e) => Number(e.dataset.packets ?? 0))
      const first = await until(packets, (n) => n > 0, "inbound video packets")
      await until(packets, (n) => n > first, "more inbound video packets")
      const size = await until(
        () => page.locator("#remote-video").evaluate((v: HTMLVideoElement) => [v.videoWidth, v.videoHeight]),
        ([w, h]) => (w ?? 0) > 0 && (h ?? 0) > 0,
        "the remote video's size"
      )
      expect(size[0]).toBeGreaterThan(0)
    }
    expect(await alice.locator("#local-caption").textContent()).toBe("You (drawn picture)")
    expect(await bob.locator("#local-caption").textContent()).toBe("You (camera)")
    await hasText(alice.locator("#call-state"), "In a call with bob")
    await alice.getByLabel("Message", { exact: true }).fill("can you see me?")
    await alice.getByLabel("Message", { exact: true }).press("Enter")
    await hasText(bob.locator("#chat-log"), "can you see me?")
    await bob.getByRole("button", { name: "Message alice" }).click()
    await bob.keyboard.type("yes: a white dot on green")
    await bob.keyboard.press("Enter")
    await hasText(alice.locator("#chat-log li[data-kind=direct]"), "bob to you: yes: a white dot on green")
    await bob.setViewportSize({ width: 1280, height: 500 })
    await alice.screenshot({ path: Path.join(artifacts, "call-alice.png"), fullPage: true })
    await bob.screenshot({ path: Path.join(artifacts, "call-bob.png"), fullPage: true })
    // The README's picture: `SYMPLE_UPDATE_DOCS=1 npx vitest run test/web/DemoPage.test.ts` refreshes it.
    if (process.env.SYMPLE_UPDATE_DOCS === "1") {
      Fs.copyFileSync(Path.join(artifacts, "call-bob.png"), new URL("../../docs/demo.png", import.meta.url))
    }

    await bob.getByRole("button", { name: "Hang up" }).click()
    await alice.locator("#call[data-call-state=Ended]").waitFor()
    await bob.locator("#call[data-call-state=Ended]").waitFor()
    await hasText(alice.locator("#call-state"), "ended (hangup, by bob)")
    expect(await alice.locator("#remote-video").evaluate((v: HTMLVideoElement) => v.srcObject)).toBeNull()
    // The camera is released when the call ends.
    expect(await bob.locator("#local-video").evaluate((v: HTMLVideoElement) => v.srcObject)).toBeNull()
    await Promise.all([alice.context().close(), bob.context().close()])
  })

  it("a streamer is listed, and watching it shows a picture that changes", async () => {
    const streamer = await startStreamer(server.port, ["--room", "watch-room", "--name", "Test pattern"])
    try {
      const page = await openPage(browser, server.url)
      await signIn(page, "viewer", { rooms: "watch-room" })
      await page.getByRole("button", { name: "Watch Test pattern" }).click()
      await page.locator("#watch[data-watch-state=Watching]").waitFor()
      const picture = () => page.locator("#stream").evaluate((c: HTMLCanvasElement) => c.toDataURL("image/png"))
      const frames = () => page.locator("#stream").evaluate((c) => Number(c.dataset.frames ?? 0))
      const before = await picture()
      const counted = await frames()
      await until(frames, (n) => n >= counted + 3, "three more frames")
      expect(await picture()).not.toBe(before)
      expect(await page.locator("#stream").evaluate((c: HTMLCanvasElement) => [c.width, c.height])).toEqual([320, 240])
      await page.screenshot({ path: Path.join(artifacts, "streamer.png"), fullPage: true })

      // Stopping sends call:hangup: the streamer stops streaming to us (and stops ffmpeg).
      await page.getByRole("button", { name: "Stop watching" }).click()
      await streamer.waitForLine(/hangup from viewer\|\S+: stopped streaming/)
      await streamer.waitForLine(/ffmpeg stopped: nobody is watching/)
      await page.context().close()
    } finally {
      await streamer.stop()
    }
  })

  it("with token authentication, a wrong token is refused on the page and the right one signs in", async () => {
    const secured = await startServer({
      authentication: true,
      authenticate: (_peer, auth) =>
        Effect.succeed(
          auth.token === "letmein" ? { allowed: true, rooms: ["staff"] } : { allowed: false, message: "Invalid token" }
        )
    })
    try {
      const page = await openPage(browser, secured.url)
      await signIn(page, "carol", { token: "wrong" })
      await hasText(page.locator("#signin-error"), "Sign-in refused: Invalid token")
      await signIn(page, "carol", { token: "letmein" })
      await hasText(page.locator("#who"), "Signed in as carol")
      await page.context().close()
    } finally {
      await secured.close()
    }
  })
})
