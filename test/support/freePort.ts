/**
 * A TCP port that was free a moment ago, for a process that must be told its port before it starts (a Redis server,
 * a command whose URL goes in another's arguments). Where the process can be given port 0 and report the one it
 * took, prefer that: nothing can take the port in between. Plain Node, no Effect, so benchmarks can use it too.
 */
import * as Net from "node:net"

/** A free port on `host` (every interface when it is not given), as the system picks it for a listen on port 0. */
export const freePort = (host?: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = Net.createServer()
    probe.once("error", reject)
    probe.listen(0, host, () => {
      const { port } = probe.address() as Net.AddressInfo
      probe.close(() => resolve(port))
    })
  })
