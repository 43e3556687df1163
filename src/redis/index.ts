/**
 * Scale-out through Redis (`symple-ts/redis`): several server processes act as one. See `RedisBroker`.
 *
 * @since 0.2.0
 */
export * as RedisBroker from "./RedisBroker.js"
export * as RedisRateLimit from "./RedisRateLimit.js"
export * as RedisSessions from "./RedisSessions.js"
