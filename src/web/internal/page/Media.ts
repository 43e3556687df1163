/**
 * The media of a call: the camera and microphone when the browser grants them, otherwise a picture drawn on a canvas
 * (so that a call also carries video where there is no camera, as in a headless browser); and what `getStats` says
 * about the video coming in.
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 * @category models
 */
export interface LocalMedia {
  readonly stream: MediaStream
  readonly source: "camera" | "canvas"
  /** Stops the tracks (and the drawing). */
  readonly stop: () => void
}

const width = 320
const height = 240
const frameRate = 15

const stopTracks = (stream: MediaStream) => {
  for (const track of stream.getTracks()) track.stop()
}

/**
 * A video track drawn on a canvas: a moving dot, the time and the caller's name, so that the far end can see it move.
 *
 * @since 0.2.0
 * @category constructors
 */
export const drawn = (label: string): LocalMedia => {
  const canvas = document.createElement("canvas")
  canvas.width = width
  canvas.height = height
  const context = canvas.getContext("2d")
  const started = performance.now()
  const draw = () => {
    if (context === null) return
    const t = (performance.now() - started) / 1000
    const hue = (t * 40) % 360
    context.fillStyle = `hsl(${hue} 45% 30%)`
    context.fillRect(0, 0, width, height)
    context.fillStyle = "white"
    context.beginPath()
    context.arc(width / 2 + Math.cos(t * 2) * 100, height / 2 + Math.sin(t * 3) * 70, 18, 0, Math.PI * 2)
    context.fill()
    context.font = "bold 22px system-ui, sans-serif"
    context.fillText(label, 12, 32)
    context.font = "16px ui-monospace, monospace"
    context.fillText(new Date().toLocaleTimeString(), 12, height - 14)
  }
  draw()
  // A timer rather than requestAnimationFrame, which stops in a window that is not shown.
  const timer = setInterval(draw, 1000 / frameRate)
  const stream = canvas.captureStream(frameRate)
  return {
    stream,
    source: "canvas",
    stop: () => {
      clearInterval(timer)
      stopTracks(stream)
    }
  }
}

/**
 * The camera and microphone when `camera` is set and the browser grants them (the microphone is dropped when only
 * it is refused), otherwise the drawn picture.
 *
 * @since 0.2.0
 * @category constructors
 */
export const open = async (options: { readonly camera: boolean; readonly label: string }): Promise<LocalMedia> => {
  const devices = navigator.mediaDevices as MediaDevices | undefined
  if (options.camera && devices !== undefined) {
    const video = { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: frameRate } }
    for (const constraints of [{ video, audio: true }, { video, audio: false }]) {
      try {
        const stream = await devices.getUserMedia(constraints)
        return { stream, source: "camera", stop: () => stopTracks(stream) }
      } catch {
        // No device, or permission refused: try with less, then draw.
      }
    }
  }
  return drawn(options.label)
}

/**
 * The video received on a connection, summed over its inbound video streams.
 *
 * @since 0.2.0
 * @category models
 */
export interface Inbound {
  readonly packets: number
  readonly bytes: number
  readonly frames: number
}

/**
 * @since 0.2.0
 * @category getters
 */
export const inboundVideo = async (pc: RTCPeerConnection): Promise<Inbound> => {
  const report = await pc.getStats()
  let packets = 0
  let bytes = 0
  let frames = 0
  report.forEach((entry: { type?: string; kind?: string; [key: string]: unknown }) => {
    if (entry.type !== "inbound-rtp" || entry.kind !== "video") return
    packets += typeof entry.packetsReceived === "number" ? entry.packetsReceived : 0
    bytes += typeof entry.bytesReceived === "number" ? entry.bytesReceived : 0
    frames += typeof entry.framesDecoded === "number" ? entry.framesDecoded : 0
  })
  return { packets, bytes, frames }
}
