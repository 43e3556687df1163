/**
 * The `MJPEGWebSocket` engine of the Symple players: a WebSocket of its own that carries one JPEG per binary frame,
 * drawn on a canvas as the frames arrive.
 *
 * @since 0.2.0
 */

/**
 * The engine name a streamer's `call:accept` carries in `data.engine`.
 *
 * @since 0.2.0
 * @category constants
 */
export const engine = "MJPEGWebSocket"

/**
 * @since 0.2.0
 * @category models
 */
export interface Player {
  /** Closes the stream's socket. */
  readonly close: () => void
}

/**
 * Plays the stream at `url` on `canvas`. A frame that arrives while the previous one is still being decoded
 * replaces the one waiting, so a slow page shows the latest picture rather than falling behind.
 *
 * @since 0.2.0
 * @category constructors
 */
export const play = (url: string, canvas: HTMLCanvasElement, events: {
  readonly onFrame: (frames: number) => void
  readonly onClose: (reason: string) => void
}): Player => {
  const context = canvas.getContext("2d")
  const socket = new WebSocket(url.replace(/^http/i, "ws"))
  socket.binaryType = "arraybuffer"
  let frames = 0
  let decoding = false
  let waiting: ArrayBuffer | undefined
  let closed = false

  const draw = async (jpeg: ArrayBuffer): Promise<void> => {
    decoding = true
    try {
      const bitmap = await createImageBitmap(new Blob([jpeg], { type: "image/jpeg" }))
      if (closed) return bitmap.close()
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width
        canvas.height = bitmap.height
      }
      context?.drawImage(bitmap, 0, 0)
      bitmap.close()
      frames += 1
      events.onFrame(frames)
    } catch {
      // A frame that is not a JPEG is skipped; the next one may be.
    } finally {
      decoding = false
    }
    const next = waiting
    waiting = undefined
    if (next !== undefined && !closed) await draw(next)
  }

  socket.onmessage = (event: MessageEvent<unknown>) => {
    if (!(event.data instanceof ArrayBuffer)) return
    if (decoding) waiting = event.data
    else void draw(event.data)
  }
  const end = (reason: string) => {
    if (closed) return
    closed = true
    events.onClose(reason)
  }
  socket.onerror = () => end("the stream's connection failed")
  socket.onclose = () => end("the stream ended")
  return {
    close: () => {
      closed = true
      socket.close()
    }
  }
}
