/**
 * WebRTC calls over Symple: a call session state machine, its signalling port and the peer-connection contract.
 *
 * @since 0.1.0
 */
export * as CallSession from "./CallSession.js"
export * as CallState from "./CallState.js"
export * as PeerConnection from "./PeerConnection.js"
export * as Signaller from "./Signaller.js"
