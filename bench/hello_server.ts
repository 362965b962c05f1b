/**
 * The CPU yardstick: a hello-world `Deno.serve`, run as its own process and
 * driven by the same load generator with the same bodies as the service. It
 * reads each body (unread, the connection could not be kept alive) and
 * answers "ok". Argument: the port.
 */
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => {} }, async (request) => {
  await request.arrayBuffer();
  return new Response("ok");
});
