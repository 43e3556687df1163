/**
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * A frame that cannot be accepted, with the HTTP-style status of the `error` frame that answers it.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly status: number
  readonly message: string
  /** The frame's `type` when it named a known one: which kind of frame was refused, for logs and callers. */
  readonly frameType?: string | undefined
}> {
  static badRequest(message: string, frameType?: string): FrameError {
    return new FrameError({ status: 400, message, frameType })
  }
}
