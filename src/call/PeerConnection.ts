/**
 * The part of the W3C `RTCPeerConnection` a call session drives. A browser's native `RTCPeerConnection` and
 * werift's (pure TypeScript WebRTC for Node) both satisfy it as they are, so either plugs into a session unchanged.
 *
 * The session only negotiates: it creates the offer or answer, trickles candidates, watches the connection state,
 * and renegotiates when the connection asks for it (`negotiationneeded`, after a track is added to an Active call).
 * Media tracks and data channels are the application's business, set up in the factory it hands the session (the
 * caller adds them there, before the first offer is created) or added later to the connected call.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category models
 */
export interface SessionDescriptionInit {
  readonly type: "offer" | "answer"
  readonly sdp: string
}

/**
 * Takes back a local offer that was not answered (when both sides offer at once and we yield).
 *
 * @since 0.2.0
 * @category models
 */
export interface RollbackInit {
  readonly type: "rollback"
}

/**
 * A description as a peer connection returns it (`createOffer`, `localDescription`).
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionDescriptionLike {
  readonly type?: string | null | undefined
  readonly sdp?: string | null | undefined
}

/**
 * A candidate as a peer connection reports it (`RTCIceCandidate` in browsers and in werift).
 *
 * @since 0.1.0
 * @category models
 */
export interface IceCandidateLike {
  readonly candidate?: string | null | undefined
  readonly sdpMid?: string | null | undefined
  readonly sdpMLineIndex?: number | null | undefined
}

/**
 * A remote candidate handed to `addIceCandidate`.
 *
 * @since 0.1.0
 * @category models
 */
export interface IceCandidateInit {
  readonly candidate: string
  readonly sdpMid?: string
  readonly sdpMLineIndex?: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface IceCandidateEventLike {
  readonly candidate?: IceCandidateLike | null | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PeerConnection {
  readonly connectionState: string
  readonly localDescription: SessionDescriptionLike | null | undefined
  createOffer(): Promise<SessionDescriptionLike>
  createAnswer(): Promise<SessionDescriptionLike>
  setLocalDescription(description: SessionDescriptionInit | RollbackInit): Promise<unknown>
  setRemoteDescription(description: SessionDescriptionInit): Promise<unknown>
  addIceCandidate(candidate: IceCandidateInit): Promise<unknown>
  addEventListener(type: "icecandidate", listener: (event: IceCandidateEventLike) => void): void
  addEventListener(type: "connectionstatechange", listener: () => void): void
  addEventListener(type: "negotiationneeded", listener: () => void): void
  removeEventListener(type: "icecandidate", listener: (event: IceCandidateEventLike) => void): void
  removeEventListener(type: "connectionstatechange", listener: () => void): void
  removeEventListener(type: "negotiationneeded", listener: () => void): void
  close(): unknown
}
