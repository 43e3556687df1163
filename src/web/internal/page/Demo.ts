/**
 * The demo page's program: sign in with a `SympleClient`, then keep the page in step with the client's streams
 * (connection state, rooms, roster, messages) and with a `CallSession` whose peer connections are the browser's
 * `RTCPeerConnection`. Everything a signed-in session starts lives in that session's scope: signing out closes the
 * client, hangs up a call and removes the page's listeners.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberSet from "effect/FiberSet"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as Stream from "effect/Stream"
import * as CallSession from "../../../call/CallSession.js"
import type { CallState } from "../../../call/CallState.js"
import * as Signaller from "../../../call/Signaller.js"
import type { ClientState } from "../../../client/ClientState.js"
import * as SympleClient from "../../../client/SympleClient.js"
import * as Address from "../../../protocol/Address.js"
import * as Call from "../../../protocol/Call.js"
import type * as Frame from "../../../protocol/Frame.js"
import { isObject } from "../../../protocol/Json.js"
import * as Peer from "../../../protocol/Peer.js"
import * as Chat from "./Chat.js"
import * as Media from "./Media.js"
import * as Mjpeg from "./Mjpeg.js"

class SignInError extends Data.TaggedError("SignInError")<{ readonly message: string }> {}

class WatchError extends Data.TaggedError("WatchError")<{ readonly message: string }> {}

/** The elements the program drives, all present in the served HTML. */
const elements = (doc: Document) => {
  const get = <T extends HTMLElement>(id: string, type: new() => T): T => {
    const element = doc.getElementById(id)
    if (!(element instanceof type)) throw new Error(`The page has no ${type.name} #${id}`)
    return element
  }
  return {
    connection: get("connection", HTMLElement),
    who: get("who", HTMLElement),
    signOut: get("sign-out", HTMLButtonElement),
    signIn: get("signin", HTMLElement),
    signInForm: get("signin-form", HTMLFormElement),
    signInButton: get("sign-in", HTMLButtonElement),
    name: get("name", HTMLInputElement),
    token: get("token", HTMLInputElement),
    rooms: get("rooms", HTMLInputElement),
    useCamera: get("use-camera", HTMLInputElement),
    signInError: get("signin-error", HTMLElement),
    app: get("app", HTMLElement),
    roomList: get("room-list", HTMLUListElement),
    joinForm: get("join-form", HTMLFormElement),
    joinRoom: get("join-room", HTMLInputElement),
    roomsError: get("rooms-error", HTMLElement),
    peerList: get("peer-list", HTMLUListElement),
    noPeers: get("no-peers", HTMLElement),
    streamerList: get("streamer-list", HTMLUListElement),
    noStreamers: get("no-streamers", HTMLElement),
    chatLog: get("chat-log", HTMLOListElement),
    chatForm: get("chat-form", HTMLFormElement),
    chatTo: get("chat-to", HTMLSelectElement),
    chatText: get("chat-text", HTMLInputElement),
    chatError: get("chat-error", HTMLElement),
    call: get("call", HTMLElement),
    callState: get("call-state", HTMLElement),
    incoming: get("incoming", HTMLElement),
    accept: get("accept", HTMLButtonElement),
    reject: get("reject", HTMLButtonElement),
    hangup: get("hangup", HTMLButtonElement),
    remoteVideo: get("remote-video", HTMLVideoElement),
    localVideo: get("local-video", HTMLVideoElement),
    localCaption: get("local-caption", HTMLElement),
    callStats: get("call-stats", HTMLElement),
    watch: get("watch", HTMLElement),
    watchState: get("watch-state", HTMLElement),
    stream: get("stream", HTMLCanvasElement),
    watchStats: get("watch-stats", HTMLElement),
    stopWatching: get("stop-watching", HTMLButtonElement)
  }
}

type Ui = ReturnType<typeof elements>

type Run = (effect: Effect.Effect<unknown, never>) => unknown

/** Adds a listener for the life of the scope; each event runs `handler` as a fiber of that scope. */
const listen = <K extends keyof HTMLElementEventMap>(
  run: Run,
  target: HTMLElement,
  type: K,
  handler: (event: HTMLElementEventMap[K]) => Effect.Effect<void>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const listener = (event: HTMLElementEventMap[K]) => {
        // A form submission never leaves the page.
        if (type === "submit") event.preventDefault()
        run(handler(event))
      }
      target.addEventListener(type, listener)
      return listener
    }),
    (listener) => Effect.sync(() => target.removeEventListener(type, listener))
  ).pipe(Effect.asVoid)

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { readonly text?: string; readonly className?: string; readonly attributes?: Record<string, string> } = {},
  ...children: ReadonlyArray<Node>
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  if (props.text !== undefined) element.textContent = props.text
  if (props.className !== undefined) element.className = props.className
  for (const [key, value] of Object.entries(props.attributes ?? {})) element.setAttribute(key, value)
  element.append(...children)
  return element
}

/** Replaces a list's items, keeping keyboard focus on the control with the same `data-key` when it is still there. */
const replaceItems = (list: HTMLElement, items: ReadonlyArray<HTMLElement>) => {
  const active = document.activeElement
  const key = active instanceof HTMLElement && list.contains(active) ? active.dataset.key : undefined
  list.replaceChildren(...items)
  if (key === undefined) return
  const again = Array.from(list.querySelectorAll<HTMLElement>("[data-key]")).find((e) => e.dataset.key === key)
  again?.focus()
}

const displayName = (peer: Peer.Peer): string => peer.name !== undefined && peer.name !== "" ? peer.name : peer.user

const isStreamer = (peer: Peer.Peer): boolean => peer.peerType === "streamer"

const connectionText = (state: ClientState): string => {
  switch (state._tag) {
    case "Closed":
      return "Offline"
    case "Connecting":
      return state.attempt > 1 ? `Reconnecting (attempt ${state.attempt})…` : "Connecting…"
    case "Authenticating":
      return "Signing in…"
    case "Online":
      return "Online"
    case "Error":
      return `Connection lost: ${state.message}${state.retrying ? ", retrying" : ""}`
  }
}

/** The WebSocket URL of the server that served the page. */
const socketUrl = (location: Location): string => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`

const roomsOf = (text: string): ReadonlyArray<string> =>
  Array.from(new Set(text.split(",").map((room) => room.trim()).filter((room) => room !== "")))

interface SignInForm {
  readonly name: string
  readonly token: string
  readonly rooms: ReadonlyArray<string>
  readonly camera: boolean
}

interface ActiveCall {
  readonly pc: RTCPeerConnection
  readonly media: Media.LocalMedia
}

/** A signed-in session, until it fails or its fiber is interrupted (sign out). */
const session = (ui: Ui, form: SignInForm) =>
  Effect.gen(function*() {
    const run: Run = yield* FiberSet.makeRuntime<never, unknown, never>()
    const client = yield* SympleClient.make({
      url: socketUrl(window.location),
      user: form.name,
      name: form.name,
      ...(form.token === "" ? {} : { token: form.token }),
      rooms: form.rooms,
      reconnectDelay: "1 second",
      reconnectMaxDelay: "10 seconds"
    }).pipe(Effect.provide(Socket.layerWebSocketConstructorGlobal))
    yield* client.state.pipe(
      Stream.runForEach((state) => Effect.sync(() => void (ui.connection.textContent = connectionText(state)))),
      Effect.forkScoped
    )
    const self = yield* client.awaitOnline.pipe(
      Effect.timeoutOrElse({
        duration: "15 seconds",
        orElse: () => Effect.fail(new SignInError({ message: "The server did not answer: is it running?" }))
      }),
      Effect.catchTags({
        AuthRefused: (refused) => Effect.fail(new SignInError({ message: `Sign-in refused: ${refused.message}` })),
        ClientClosed: (closed) => Effect.fail(new SignInError({ message: closed.message }))
      })
    )
    const me = Peer.address(self)

    // --- the page, signed in ------------------------------------------------------------------------------------
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        ui.signIn.hidden = true
        ui.app.hidden = false
        ui.signOut.hidden = false
        ui.who.hidden = false
        ui.who.textContent = `Signed in as ${displayName(self)} (${me})`
      }),
      () =>
        Effect.sync(() => {
          ui.app.hidden = true
          ui.signOut.hidden = true
          ui.who.hidden = true
          ui.signIn.hidden = false
          ui.connection.textContent = "Not signed in"
          for (const list of [ui.roomList, ui.peerList, ui.streamerList, ui.chatLog, ui.chatTo]) list.replaceChildren()
        })
    )

    let peers: ReadonlyArray<Peer.Peer> = []
    let rooms: ReadonlyArray<string> = []
    let busy = false
    const nameOf = (address: string): string => {
      const peer = peers.find((p) => Peer.address(p) === address)
      return peer === undefined ? Address.parse(address).user : displayName(peer)
    }

    // --- rooms ----------------------------------------------------------------------------------------------------
    const renderRooms = () =>
      replaceItems(
        ui.roomList,
        rooms.map((room) => {
          const personal = room === self.user
          return el(
            "li",
            {},
            el("span", { text: room, className: "name" }),
            personal
              ? el("span", { text: "your own room", className: "meta" })
              : el("button", {
                text: "Leave",
                className: "secondary",
                attributes: { type: "button", "aria-label": `Leave room ${room}`, "data-key": `leave:${room}` }
              })
          )
        })
      )
    yield* listen(run, ui.roomList, "click", (event) => {
      const key = event.target instanceof HTMLElement ? event.target.dataset.key : undefined
      if (key === undefined || !key.startsWith("leave:")) return Effect.void
      const room = key.slice("leave:".length)
      return client.leaveRoom(room).pipe(
        Effect.andThen(Effect.sync(() => void (ui.roomsError.textContent = ""))),
        Effect.catch((e) =>
          Effect.sync(() => void (ui.roomsError.textContent = `Could not leave ${room}: ${e.message}`))
        )
      )
    })
    yield* listen(run, ui.joinForm, "submit", () => {
      const room = ui.joinRoom.value.trim()
      if (room === "") return Effect.void
      return client.joinRoom(room).pipe(
        Effect.andThen(Effect.sync(() => {
          ui.joinRoom.value = ""
          ui.roomsError.textContent = ""
        })),
        Effect.catch((e) =>
          Effect.sync(() => {
            const status = e._tag === "RequestError" && e.status !== undefined ? ` (status ${e.status})` : ""
            ui.roomsError.textContent = `Could not join ${room}${status}`
          })
        )
      )
    })

    // --- chat -----------------------------------------------------------------------------------------------------
    const renderTargets = () => {
      const previous = ui.chatTo.value
      const options = [
        ...rooms.filter((room) => room !== self.user).map((room) =>
          el("option", { text: `Room ${room}`, attributes: { value: room } })
        ),
        ...peers.filter((peer) => !isStreamer(peer)).map((peer) =>
          el("option", { text: `${displayName(peer)} (direct)`, attributes: { value: Peer.address(peer) } })
        )
      ]
      ui.chatTo.replaceChildren(...options)
      if (options.some((option) => option.value === previous)) ui.chatTo.value = previous
    }
    const appendLine = (line: Chat.Line) => {
      const from = line.from === me ? "You" : nameOf(line.from)
      const where = line.kind === "room"
        ? `in ${line.to}`
        : line.to === me
        ? "to you"
        : `to ${nameOf(line.to)}`
      ui.chatLog.append(
        el(
          "li",
          { className: line.kind, attributes: { "data-kind": line.kind } },
          el("span", { text: from, className: "from" }),
          el("span", { text: ` ${where}: `, className: "meta" }),
          el("span", { text: line.text, className: "text" })
        )
      )
      while (ui.chatLog.children.length > 200) ui.chatLog.firstElementChild?.remove()
      ui.chatLog.scrollTop = ui.chatLog.scrollHeight
    }
    yield* client.messages.pipe(
      Stream.runForEach((frame) => Effect.sync(() => Option.map(Chat.lineOf(frame), appendLine))),
      Effect.forkScoped
    )
    yield* listen(run, ui.chatForm, "submit", () => {
      const to = ui.chatTo.value
      const text = ui.chatText.value.trim()
      if (to === "" || text === "") return Effect.void
      return client.send(Chat.message(to, text)).pipe(
        Effect.andThen(Effect.sync(() => {
          ui.chatText.value = ""
          ui.chatError.textContent = ""
          appendLine({ kind: Address.hasSeparator(to) ? "direct" : "room", from: me, to, text })
        })),
        Effect.catch((e) => Effect.sync(() => void (ui.chatError.textContent = `Not sent: ${e.message}`)))
      )
    })
    yield* client.errors.pipe(
      Stream.runForEach((error) =>
        Effect.sync(() => void (ui.roomsError.textContent = `Server: ${error.message ?? `error ${error.status}`}`))
      ),
      Effect.forkScoped
    )

    // --- people ---------------------------------------------------------------------------------------------------
    const renderPeers = () => {
      const others = peers.filter((peer) => peer.id !== self.id)
      const people = others.filter((peer) => !isStreamer(peer))
      const streamers = others.filter(isStreamer)
      replaceItems(
        ui.peerList,
        people.map((peer) => {
          const name = displayName(peer)
          const address = Peer.address(peer)
          return el(
            "li",
            { attributes: { "data-address": address } },
            el("span", { text: name, className: "name" }),
            el("span", { text: address, className: "meta" }),
            el("button", {
              text: "Call",
              attributes: {
                type: "button",
                "aria-label": `Call ${name}`,
                "data-key": `call:${address}`,
                "data-action": "call",
                ...(busy ? { disabled: "" } : {})
              }
            }),
            el("button", {
              text: "Message",
              className: "secondary",
              attributes: { type: "button", "aria-label": `Message ${name}`, "data-key": `message:${address}` }
            })
          )
        })
      )
      replaceItems(
        ui.streamerList,
        streamers.map((peer) => {
          const name = displayName(peer)
          return el(
            "li",
            { attributes: { "data-address": Peer.address(peer) } },
            el("span", { text: name, className: "name" }),
            el("button", {
              text: "Watch",
              attributes: { type: "button", "aria-label": `Watch ${name}`, "data-key": `watch:${Peer.address(peer)}` }
            })
          )
        })
      )
      ui.noPeers.hidden = people.length > 0
      ui.noStreamers.hidden = streamers.length > 0
    }
    yield* client.rooms.pipe(
      Stream.runForEach((current) =>
        Effect.sync(() => {
          rooms = current
          renderRooms()
          renderTargets()
        })
      ),
      Effect.forkScoped
    )
    yield* client.roster.changes.pipe(
      Stream.runForEach((roster) =>
        Effect.sync(() => {
          peers = Array.from(HashMap.values(roster)).sort((a, b) =>
            displayName(a).localeCompare(displayName(b)) || a.id.localeCompare(b.id)
          )
          renderPeers()
          renderTargets()
        })
      ),
      Effect.forkScoped
    )

    // --- calls ----------------------------------------------------------------------------------------------------
    const calls = new Map<number, ActiveCall>()
    const release = (callId: number) => {
      const call = calls.get(callId)
      if (call === undefined) return
      calls.delete(callId)
      call.media.stop()
      ui.localVideo.srcObject = null
      ui.remoteVideo.srcObject = null
      ui.localCaption.textContent = "You"
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => Array.from(calls.keys()).forEach(release)))
    const openCall = async (callId: number): Promise<RTCPeerConnection> => {
      const media = await Media.open({ camera: form.camera, label: displayName(self) })
      const pc = new RTCPeerConnection()
      // Tracks go in before the session creates the offer (caller) or the answer (callee).
      for (const track of media.stream.getTracks()) pc.addTrack(track, media.stream)
      pc.addEventListener("track", (event) => {
        ui.remoteVideo.srcObject = event.streams[0] ?? new MediaStream([event.track])
        void ui.remoteVideo.play().catch(() => {})
      })
      calls.set(callId, { pc, media })
      ui.localVideo.srcObject = media.stream
      ui.localCaption.textContent = media.source === "camera" ? "You (camera)" : "You (drawn picture)"
      return pc
    }
    const calling = yield* CallSession.make({
      peerConnection: ({ callId }) => Effect.tryPromise(() => openCall(callId)),
      ringTimeout: "30 seconds"
    }).pipe(Effect.provideService(Signaller.Signaller, Signaller.fromClient(client)))

    const statsLoop = yield* FiberHandle.make<void, never>()
    const sampleStats = (callId: number) =>
      Effect.gen(function*() {
        const call = calls.get(callId)
        if (call === undefined) return
        const inbound = yield* Effect.promise(() => Media.inboundVideo(call.pc))
        const { videoWidth, videoHeight } = ui.remoteVideo
        ui.callStats.dataset.packets = String(inbound.packets)
        ui.callStats.dataset.frames = String(inbound.frames)
        ui.callStats.textContent =
          `Receiving ${videoWidth}×${videoHeight} video: ${inbound.packets} packets, ${inbound.frames} frames`
      }).pipe(Effect.andThen(Effect.sleep("500 millis")), Effect.forever)

    const callText = (state: CallState): string => {
      switch (state._tag) {
        case "Idle":
          return "No call"
        case "OutgoingInit":
          return `Calling ${nameOf(state.remote)}…`
        case "IncomingInit":
          return `${nameOf(state.remote)} is calling`
        case "Negotiating":
          return `Connecting to ${nameOf(state.remote)}…`
        case "Active":
          return `In a call with ${nameOf(state.remote)}`
        case "Ending":
        case "Ended":
          return `Call with ${nameOf(state.remote)} ended (${state.reason}, ${
            state.by === "local" ? "by you" : `by ${nameOf(state.remote)}`
          })`
      }
    }
    const renderCall = (state: CallState) =>
      Effect.gen(function*() {
        ui.call.dataset.callState = state._tag
        ui.callState.textContent = callText(state)
        ui.incoming.hidden = state._tag !== "IncomingInit"
        ui.hangup.disabled = !(state._tag === "OutgoingInit" || state._tag === "Negotiating" ||
          state._tag === "Active")
        busy = state._tag !== "Idle" && state._tag !== "Ended"
        ui.peerList.querySelectorAll<HTMLButtonElement>("[data-action=call]").forEach((button) => {
          button.disabled = busy
        })
        if (state._tag === "Active") yield* FiberHandle.run(statsLoop, sampleStats(state.callId))
        else yield* FiberHandle.clear(statsLoop)
        if (state._tag === "Ended") release(state.callId)
        if (state._tag === "Idle" || state._tag === "Ended") {
          delete ui.callStats.dataset.packets
          delete ui.callStats.dataset.frames
          ui.callStats.textContent = ""
        }
      })
    yield* calling.state.pipe(Stream.runForEach(renderCall), Effect.forkScoped)

    const showCallError = (e: { readonly message: string }) =>
      Effect.sync(() => void (ui.callState.textContent = e.message))
    yield* listen(run, ui.peerList, "click", (event) => {
      const key = event.target instanceof HTMLElement ? event.target.dataset.key : undefined
      if (key?.startsWith("call:") === true) {
        return calling.call(key.slice("call:".length)).pipe(Effect.catch(showCallError))
      }
      if (key?.startsWith("message:") === true) {
        return Effect.sync(() => {
          ui.chatTo.value = key.slice("message:".length)
          ui.chatText.focus()
        })
      }
      return Effect.void
    })
    yield* listen(run, ui.accept, "click", () => calling.accept().pipe(Effect.catch(showCallError)))
    yield* listen(run, ui.reject, "click", () => calling.reject().pipe(Effect.catch(showCallError)))
    yield* listen(run, ui.hangup, "click", () => calling.hangup().pipe(Effect.catch(showCallError)))

    // --- streamers ------------------------------------------------------------------------------------------------
    const watching = yield* FiberHandle.make<void, never>()
    const watchState = (state: "Asking" | "Watching" | "Ended", text: string) => {
      ui.watch.dataset.watchState = state
      ui.watchState.textContent = text
    }
    const nextCallFrom = (
      subscription: PubSub.Subscription<Frame.Frame>,
      address: string,
      actions: ReadonlyArray<Call.Action>
    ): Effect.Effect<Frame.Message> =>
      Effect.flatMap(PubSub.take(subscription), (frame) => {
        if (frame.type !== "message" || frame.from !== address) return nextCallFrom(subscription, address, actions)
        const action = Call.actionOf(frame.subtype)
        return Option.isSome(action) && actions.includes(action.value)
          ? Effect.succeed(frame)
          : nextCallFrom(subscription, address, actions)
      })
    const watch = (streamer: string) =>
      Effect.gen(function*() {
        const name = nameOf(streamer)
        ui.watch.hidden = false
        ui.watchStats.textContent = ""
        delete ui.stream.dataset.frames
        watchState("Asking", `Asking ${name} for its stream…`)
        // Subscribed before the init goes out, so the answer cannot slip past.
        const frames = yield* client.subscribe
        yield* client.send(Call.message(streamer, Call.Signal.Init()))
        const answer = yield* nextCallFrom(frames, streamer, ["accept", "reject", "hangup"]).pipe(
          Effect.timeoutOrElse({
            duration: "10 seconds",
            orElse: () => Effect.fail(new WatchError({ message: `${name} did not answer` }))
          })
        )
        const url = isObject(answer.data) ? answer.data.url : undefined
        const engine = isObject(answer.data) ? answer.data.engine : undefined
        if (answer.subtype !== Call.subtype("accept")) {
          const reason = Option.match(Call.parse(answer), {
            onNone: () => "no reason",
            onSome: ({ signal }) => "reason" in signal ? signal.reason : "no reason"
          })
          return yield* new WatchError({ message: `${name} declined (${reason})` })
        }
        const hangup = client.send(Call.message(streamer, Call.Signal.Hangup({ reason: Call.Reason.hangup })))
        if (typeof url !== "string" || engine !== Mjpeg.engine) {
          yield* Effect.ignore(hangup)
          return yield* new WatchError({ message: `${name} offers ${String(engine)}, which this page cannot play` })
        }
        const ended = yield* Deferred.make<string>()
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            Mjpeg.play(url, ui.stream, {
              onFrame: (count) => {
                if (count === 1) watchState("Watching", `Watching ${name}`)
                ui.stream.dataset.frames = String(count)
                ui.watchStats.textContent = `${count} frames, ${ui.stream.width}×${ui.stream.height}`
              },
              onClose: (reason) => Deferred.doneUnsafe(ended, Exit.succeed(reason))
            })
          ),
          (player) => Effect.sync(() => player.close())
        )
        // However watching stops, the streamer is told to stop streaming (before the stream's socket closes: this
        // finalizer runs before the player's).
        let hungUp = false
        yield* Effect.addFinalizer(() => hungUp ? Effect.void : Effect.ignore(hangup))
        yield* nextCallFrom(frames, streamer, ["hangup"]).pipe(
          Effect.andThen(Effect.sync(() => {
            hungUp = true
            Deferred.doneUnsafe(ended, Exit.succeed(`${name} hung up`))
          })),
          Effect.forkScoped
        )
        yield* client.roster.peerDisconnected.pipe(
          Stream.filter((peer) => Peer.address(peer) === streamer),
          Stream.runHead,
          Effect.andThen(Effect.sync(() => Deferred.doneUnsafe(ended, Exit.succeed(`${name} went offline`)))),
          Effect.forkScoped
        )
        const reason = yield* Deferred.await(ended)
        watchState("Ended", `Stream ended: ${reason}`)
      }).pipe(
        Effect.scoped,
        Effect.catch((e) => Effect.sync(() => watchState("Ended", e.message)))
      )
    yield* listen(run, ui.streamerList, "click", (event) => {
      const key = event.target instanceof HTMLElement ? event.target.dataset.key : undefined
      if (key === undefined || !key.startsWith("watch:")) return Effect.void
      return FiberHandle.run(watching, watch(key.slice("watch:".length))).pipe(Effect.asVoid)
    })
    yield* listen(run, ui.stopWatching, "click", () =>
      FiberHandle.clear(watching).pipe(Effect.andThen(Effect.sync(() => void (ui.watch.hidden = true)))))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => void (ui.watch.hidden = true))
    )

    return yield* Effect.never
  })

/**
 * Runs the page: the sign-in form starts a session, "Sign out" ends it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const main = (doc: Document): Effect.Effect<never, never, Scope.Scope> =>
  Effect.gen(function*() {
    const ui = elements(doc)
    const run: Run = yield* FiberSet.makeRuntime<never, unknown, never>()
    const current = yield* FiberHandle.make<void, never>()
    yield* listen(run, ui.signInForm, "submit", () => {
      const name = ui.name.value.trim()
      if (name === "" || name.includes("|")) {
        return Effect.sync(() => void (ui.signInError.textContent = "Enter a name without \"|\"."))
      }
      const form: SignInForm = {
        name,
        token: ui.token.value,
        rooms: roomsOf(ui.rooms.value),
        camera: ui.useCamera.checked
      }
      ui.signInError.textContent = ""
      ui.signInButton.disabled = true
      return FiberHandle.run(
        current,
        session(ui, form).pipe(
          Effect.scoped,
          Effect.catch((e) => Effect.sync(() => void (ui.signInError.textContent = e.message))),
          Effect.ensuring(Effect.sync(() => {
            ui.signInButton.disabled = false
            ui.name.focus()
          }))
        )
      ).pipe(Effect.asVoid)
    })
    yield* listen(run, ui.signOut, "click", () => FiberHandle.clear(current))
    ui.name.focus()
    return yield* Effect.never
  })
