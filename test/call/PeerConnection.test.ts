import { describe, expect, it } from "@effect/vitest"
import { RTCPeerConnection as WeriftPeerConnection } from "werift"
import type { PeerConnection } from "../../src/call/PeerConnection.js"
import { loopback } from "./chatPeer.js"

// Compile-time proof (checked by `tsc --noEmit`) that both real implementations satisfy the contract unchanged.
type Satisfies<T extends PeerConnection> = T
export type BrowserFits = Satisfies<RTCPeerConnection>
export type WeriftFits = Satisfies<WeriftPeerConnection>

describe("call/PeerConnection", () => {
  it("a werift peer connection is used as it is", async () => {
    const pc: PeerConnection = new WeriftPeerConnection(loopback)
    const candidates: Array<unknown> = []
    const onCandidate = (event: { readonly candidate?: unknown }) => {
      candidates.push(event.candidate)
    }
    pc.addEventListener("icecandidate", onCandidate)
    const offer = await pc.createOffer()
    expect(offer.type).toBe("offer")
    await pc.setLocalDescription({ type: "offer", sdp: offer.sdp ?? "" })
    expect(pc.localDescription?.sdp).toContain("v=0")
    pc.removeEventListener("icecandidate", onCandidate)
    await pc.close()
    expect(pc.connectionState).toBe("closed")
  })
})
