/**
 * `deno task bench:request`: the service's request path in process (see
 * bench/request_path.ts: no network, no database), wall time per iteration.
 * Group "request": a webhook through the service's handler and batch writer
 * against a hello-world handler that reads the same body; group "steps":
 * each step alone, to see where the time goes. Wall time on a shared machine
 * moves by more than 3% from run to run: `deno task bench:request-cpu`
 * (bench/request_path_cpu.ts) gives the steady figure, from CPU time.
 */
import { bodyCount, helloRequest, steps, webhookRequest } from "./request_path.ts";

Deno.bench({ name: "hello-world: read the body, answer ok", group: "request", baseline: true, fn: helloRequest });
Deno.bench({
  name: "webhook: the service's handler and batch writer, no database",
  group: "request",
  fn: webhookRequest,
});

let next = 0;
for (const [name, fn] of steps) {
  Deno.bench({
    name,
    group: "steps",
    fn: async () => {
      next = (next + 1) % bodyCount;
      await fn(next);
    },
  });
}
